INSERT INTO `my-project.bqml_tutorial.image_embeddings` (
  uri,
  generation,
  content_type,
  size,
  md5_hash,
  updated,
  ml_generate_embedding_result,
  ml_generate_embedding_status,
  ml_generate_embedding_start_sec,
  ml_generate_embedding_end_sec,
  embedding_endpoint,
  embedding_dimension,
  embedded_at,
  attempts,
  run_id
)
SELECT
  e.uri,
  e.generation,
  e.content_type,
  e.size,
  e.md5_hash,
  e.updated,
  e.ml_generate_embedding_result,
  e.ml_generate_embedding_status,
  e.ml_generate_embedding_start_sec,
  e.ml_generate_embedding_end_sec,
  @endpoint,
  @dimension,
  CURRENT_TIMESTAMP(),
  IFNULL(prior.attempts, 0) + 1,
  @run_id
FROM ML.GENERATE_EMBEDDING(
  MODEL `my-project.bqml_tutorial.embedding_model`,
  (
    SELECT *
    FROM `my-project.bqml_tutorial.images`
    WHERE uri IN UNNEST(@uris)
  ),
  STRUCT(
    TRUE AS flatten_json_output
  )
) AS e
LEFT JOIN UNNEST(@prior_attempts) AS prior
  ON prior.uri = e.uri
  AND prior.generation = e.generation
