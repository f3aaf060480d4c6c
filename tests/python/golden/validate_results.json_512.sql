WITH vectors AS (
  SELECT
    uri,
    ml_generate_embedding_start_sec AS start_sec,
    ml_generate_embedding_status AS status,
    embedding_endpoint = @endpoint AND embedding_dimension = @dimension AS in_space,
    COALESCE(
      JSON_QUERY_ARRAY(ml_generate_embedding_result, '$.imageEmbedding'),
      JSON_QUERY_ARRAY(ml_generate_embedding_result, '$.textEmbedding'),
      JSON_QUERY_ARRAY(ml_generate_embedding_result, '$.videoEmbeddings[0].embedding')
    ) AS vector
  FROM `my-project.bqml_tutorial.image_embeddings`
),
checked AS (
  SELECT
    uri,
    status,
    in_space,
    COUNT(*) OVER (PARTITION BY uri, start_sec) AS copies,
    CASE
      WHEN status IS NULL OR status != '' THEN NULL
      WHEN IFNULL(ARRAY_LENGTH(vector), 0) = 0 THEN 'no embedding'
      WHEN ARRAY_LENGTH(vector) != @dimension THEN 'wrong length'
      WHEN EXISTS (SELECT 1 FROM UNNEST(vector) AS v WHERE SAFE.FLOAT64(v) IS NULL) THEN 'null values'
    END AS problem
  FROM vectors
)
SELECT
  COUNT(*) AS result_rows,
  COUNTIF(status = '') AS successful_rows,
  COUNTIF(status IS NULL) AS null_status_rows,
  COUNTIF(problem = 'no embedding') AS null_embedding_rows,
  COUNTIF(problem = 'wrong length') AS wrong_length_rows,
  COUNTIF(problem = 'null values') AS null_value_rows,
  COUNTIF(problem = 'NaN values') AS nan_value_rows,
  COUNTIF(copies > 1) AS duplicate_rows,
  COUNTIF(NOT in_space) AS other_space_rows,
  ARRAY_AGG(IF(problem IS NULL, NULL, STRUCT(uri, problem)) IGNORE NULLS ORDER BY uri LIMIT 10) AS examples,
  ARRAY_AGG(IF(copies > 1, uri, NULL) IGNORE NULLS ORDER BY uri LIMIT 10) AS duplicate_examples
FROM checked
