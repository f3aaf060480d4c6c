# expect-error: var.additional_roles must not contain basic roles
project_id       = "my-project"
location         = "US"
connection_id    = "embed_conn"
additional_roles = ["roles/editor"]
