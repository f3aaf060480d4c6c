WITH latest AS (
  SELECT
    uri,
    generation,
    ml_generate_embedding_status AS status,
    attempts,
    embedded_at,
    embedding_endpoint = @endpoint AND embedding_dimension = @dimension AS in_space,
    embedded_at < MAX(embedded_at) OVER (PARTITION BY uri) AS superseded
  FROM `my-project.bqml_tutorial.image_embeddings`
)
SELECT
  l.uri,
  l.status,
  STARTS_WITH(l.status, 'A retryable error occurred:') AS retryable,
  MAX(l.attempts) AS attempts,
  MAX(l.embedded_at) AS last_attempt,
  COUNT(*) OVER () AS failed_total
FROM latest AS l
JOIN `my-project.bqml_tutorial.images` AS o
  ON o.uri = l.uri
  AND o.generation = l.generation
WHERE NOT l.superseded
  AND l.in_space
  AND l.status != ''
GROUP BY l.uri, l.status
ORDER BY last_attempt DESC, l.uri, l.status
LIMIT @limit
