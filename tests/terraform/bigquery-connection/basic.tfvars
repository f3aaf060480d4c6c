project_id    = "my-project"
location      = "US"
connection_id = "embed_conn"
