DELETE FROM `my-project.bqml_tutorial.image_embeddings` AS r
WHERE NOT EXISTS (
  SELECT 1
  FROM `my-project.bqml_tutorial.images` AS o
  WHERE o.uri = r.uri
)
