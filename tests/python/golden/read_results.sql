SELECT *
FROM `my-project.bqml_tutorial.image_embeddings`
