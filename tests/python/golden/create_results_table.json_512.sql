CREATE TABLE IF NOT EXISTS `my-project.bqml_tutorial.image_embeddings` (
  uri STRING NOT NULL,
  generation INT64,
  content_type STRING,
  size INT64,
  md5_hash STRING,
  updated TIMESTAMP,
  ml_generate_embedding_result JSON,
  ml_generate_embedding_status STRING,
  ml_generate_embedding_start_sec INT64,
  ml_generate_embedding_end_sec INT64,
  embedded_at TIMESTAMP NOT NULL,
  attempts INT64 NOT NULL
)
CLUSTER BY uri
OPTIONS (description = 'Embeddings from ML.GENERATE_EMBEDDING, one row per object (per segment for video), kept by embed-kit.')
