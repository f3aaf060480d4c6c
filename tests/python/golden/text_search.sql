SELECT
  base.uri AS uri,
  distance
FROM VECTOR_SEARCH(
    (
      SELECT
        r.uri,
        r.ml_generate_embedding_result
      FROM `my-project.bqml_tutorial.image_embeddings` AS r
      JOIN `my-project.bqml_tutorial.images` AS o
        ON o.uri = r.uri
        AND o.generation = r.generation
      WHERE r.ml_generate_embedding_status = ''
        AND r.embedding_endpoint = @endpoint
        AND r.embedding_dimension = @dimension
    ),
    'ml_generate_embedding_result',
    (
      SELECT ml_generate_embedding_result
      FROM ML.GENERATE_EMBEDDING(
        MODEL `my-project.bqml_tutorial.embedding_model`,
        (SELECT @text AS content),
        STRUCT(
          TRUE AS flatten_json_output
        )
      )
    ),
    top_k => 5,
    distance_type => 'COSINE'
)
ORDER BY distance, uri
