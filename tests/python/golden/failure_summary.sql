WITH latest AS (
  SELECT
    uri,
    generation,
    ml_generate_embedding_status AS status,
    embedded_at,
    embedding_endpoint = @endpoint AND embedding_dimension = @dimension AS in_space,
    embedded_at < MAX(embedded_at) OVER (PARTITION BY uri) AS superseded
  FROM `my-project.bqml_tutorial.image_embeddings`
)
SELECT
  status,
  STARTS_WITH(status, 'A retryable error occurred:') AS retryable,
  COUNT(*) AS result_rows
FROM latest
WHERE NOT superseded
  AND in_space
  AND status != ''
GROUP BY status, retryable
ORDER BY result_rows DESC, status
