SELECT
  ml_generate_embedding_status AS status,
  STARTS_WITH(ml_generate_embedding_status, 'A retryable error occurred:') AS retryable,
  COUNT(*) AS result_rows
FROM `my-project.bqml_tutorial.image_embeddings`
WHERE ml_generate_embedding_status != ''
GROUP BY status, retryable
ORDER BY result_rows DESC, status
