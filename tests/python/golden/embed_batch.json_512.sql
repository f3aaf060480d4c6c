MERGE `my-project.bqml_tutorial.image_embeddings` AS r
USING (
  SELECT
    uri,
    generation,
    content_type,
    size,
    md5_hash,
    updated,
    ml_generate_embedding_result,
    ml_generate_embedding_status,
    ml_generate_embedding_start_sec,
    ml_generate_embedding_end_sec
  FROM ML.GENERATE_EMBEDDING(
    MODEL `my-project.bqml_tutorial.embedding_model`,
    (
      SELECT *
      FROM `my-project.bqml_tutorial.images`
      WHERE uri NOT IN (
        SELECT prior.uri
        FROM `my-project.bqml_tutorial.image_embeddings` AS prior
        JOIN `my-project.bqml_tutorial.images` AS current_object
          ON current_object.uri = prior.uri
          AND current_object.generation = prior.generation
          AND current_object.updated <= prior.updated
      )
      LIMIT 1000
    ),
    STRUCT(
      FALSE AS flatten_json_output,
      512 AS output_dimensionality
    )
  )
) AS e
ON r.uri = e.uri
WHEN MATCHED THEN UPDATE SET
  generation = e.generation,
  content_type = e.content_type,
  size = e.size,
  md5_hash = e.md5_hash,
  updated = e.updated,
  ml_generate_embedding_result = e.ml_generate_embedding_result,
  ml_generate_embedding_status = e.ml_generate_embedding_status,
  ml_generate_embedding_start_sec = e.ml_generate_embedding_start_sec,
  ml_generate_embedding_end_sec = e.ml_generate_embedding_end_sec,
  embedded_at = CURRENT_TIMESTAMP(),
  attempts = IF(r.generation = e.generation AND r.updated = e.updated, r.attempts + 1, 1)
WHEN NOT MATCHED THEN INSERT (
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
  embedded_at,
  attempts
) VALUES (
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
  CURRENT_TIMESTAMP(),
  1
)
