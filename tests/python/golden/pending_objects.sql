SELECT o.uri
FROM `my-project.bqml_tutorial.images` AS o
LEFT JOIN (
  SELECT DISTINCT uri, generation
  FROM `my-project.bqml_tutorial.image_embeddings`
  WHERE embedding_endpoint = @endpoint
    AND embedding_dimension = @dimension
) AS r
  ON r.uri = o.uri
  AND r.generation = o.generation
WHERE r.uri IS NULL
ORDER BY o.uri
