SELECT
  neighbour.uri,
  neighbour.distance
FROM (
  SELECT uri
  FROM `my-project.bqml_tutorial.image_embeddings`
  WHERE uri = @image_uri
    AND ml_generate_embedding_status = ''
    AND embedding_endpoint = @endpoint
    AND embedding_dimension = @dimension
) AS query_image
LEFT JOIN (
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
      SELECT uri, ml_generate_embedding_result
      FROM `my-project.bqml_tutorial.image_embeddings`
      WHERE uri = @image_uri
        AND ml_generate_embedding_status = ''
        AND embedding_endpoint = @endpoint
        AND embedding_dimension = @dimension
    ),
    top_k => 6,
    distance_type => 'COSINE'
  )
  WHERE base.uri != query.uri
) AS neighbour
ON TRUE
ORDER BY neighbour.distance, neighbour.uri
LIMIT 5
