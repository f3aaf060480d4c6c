SELECT
  embedding_endpoint AS endpoint,
  embedding_dimension AS dimension,
  COUNT(*) AS result_rows
FROM `my-project.bqml_tutorial.image_embeddings`
GROUP BY endpoint, dimension
ORDER BY result_rows DESC, endpoint, dimension
