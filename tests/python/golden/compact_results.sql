DELETE FROM `my-project.bqml_tutorial.image_embeddings` AS r
WHERE EXISTS (
  SELECT 1
  FROM `my-project.bqml_tutorial.image_embeddings` AS newer
  WHERE newer.uri = r.uri
    AND newer.embedded_at > r.embedded_at
)
