SELECT
  neighbour.uri,
  neighbour.distance
FROM (
  SELECT uri
  FROM `my-project.bqml_tutorial.image_embeddings`
  WHERE uri = 'gs://bucket/images/cat.jpg'
    AND ml_generate_embedding_status = ''
) AS query_image
LEFT JOIN (
  SELECT
    base.uri AS uri,
    distance
  FROM VECTOR_SEARCH(
    (
      SELECT uri, ml_generate_embedding_result
      FROM `my-project.bqml_tutorial.image_embeddings`
      WHERE ml_generate_embedding_status = ''
    ),
    'ml_generate_embedding_result',
    (
      SELECT uri, ml_generate_embedding_result
      FROM `my-project.bqml_tutorial.image_embeddings`
      WHERE uri = 'gs://bucket/images/cat.jpg'
        AND ml_generate_embedding_status = ''
    ),
    top_k => 6,
    distance_type => 'COSINE'
  )
  WHERE base.uri != query.uri
) AS neighbour
ON TRUE
ORDER BY neighbour.distance, neighbour.uri
LIMIT 5
