CREATE OR REPLACE MODEL `my-project.bqml_tutorial.embedding_model`
REMOTE WITH CONNECTION `my-project.us.embed_conn`
OPTIONS (ENDPOINT = 'multimodalembedding@001')
