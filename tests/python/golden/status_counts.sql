WITH latest AS (
  SELECT
    uri,
    generation,
    ml_generate_embedding_status AS status,
    embedded_at,
    embedding_endpoint = @endpoint AND embedding_dimension = @dimension AS in_space,
    embedded_at < MAX(embedded_at) OVER (PARTITION BY uri) AS superseded
  FROM `my-project.bqml_tutorial.image_embeddings`
),
per_uri AS (
  SELECT
    uri,
    MAX(IF(superseded, NULL, generation)) AS generation,
    LOGICAL_AND(superseded OR in_space) AS in_space,
    COUNTIF(NOT superseded AND STARTS_WITH(status, 'A retryable error occurred:')) AS retryable_rows,
    COUNTIF(NOT superseded AND status != '' AND NOT STARTS_WITH(status, 'A retryable error occurred:')) AS failed_rows,
    COUNTIF(superseded) AS superseded_rows,
    COUNTIF(NOT in_space) AS other_space_rows
  FROM latest
  GROUP BY uri
),
states AS (
  SELECT
    CASE
      WHEN o.uri IS NULL THEN 'deleted'
      WHEN p.uri IS NULL OR NOT p.in_space OR p.generation IS DISTINCT FROM o.generation THEN 'pending'
      WHEN p.retryable_rows > 0 THEN 'failed_retryable'
      WHEN p.failed_rows > 0 THEN 'failed_permanent'
      ELSE 'embedded'
    END AS state,
    IFNULL(p.superseded_rows, 0) AS superseded_rows,
    IFNULL(p.other_space_rows, 0) AS other_space_rows
  FROM `my-project.bqml_tutorial.images` AS o
  FULL OUTER JOIN per_uri AS p
    ON p.uri = o.uri
)
SELECT
  COUNTIF(state != 'deleted') AS objects,
  COUNTIF(state = 'embedded') AS embedded,
  COUNTIF(state = 'failed_retryable') AS failed_retryable,
  COUNTIF(state = 'failed_permanent') AS failed_permanent,
  COUNTIF(state = 'pending') AS pending,
  COUNTIF(state = 'deleted') AS deleted,
  IFNULL(SUM(superseded_rows), 0) AS superseded_rows,
  IFNULL(SUM(other_space_rows), 0) AS other_space_rows
FROM states
