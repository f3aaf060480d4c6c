WITH per_object AS (
  SELECT
    o.uri,
    COUNT(r.uri) AS result_rows,
    COUNTIF(STARTS_WITH(r.ml_generate_embedding_status, 'A retryable error occurred:')) AS retryable_rows,
    COUNTIF(
      r.ml_generate_embedding_status != ''
      AND NOT STARTS_WITH(r.ml_generate_embedding_status, 'A retryable error occurred:')
    ) AS failed_rows
  FROM `my-project.bqml_tutorial.images` AS o
  LEFT JOIN `my-project.bqml_tutorial.image_embeddings` AS r
    ON r.uri = o.uri
    AND r.generation = o.generation
    AND o.updated <= r.updated
  GROUP BY o.uri
)
SELECT
  COUNT(*) AS objects,
  COUNTIF(result_rows > 0 AND retryable_rows = 0 AND failed_rows = 0) AS embedded,
  COUNTIF(retryable_rows > 0) AS failed_retryable,
  COUNTIF(retryable_rows = 0 AND failed_rows > 0) AS failed_permanent,
  COUNTIF(result_rows = 0) AS pending
FROM per_object
