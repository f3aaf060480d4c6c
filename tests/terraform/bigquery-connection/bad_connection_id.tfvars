# expect-error: var.connection_id must contain only letters, digits, underscores and hyphens
project_id    = "my-project"
location      = "US"
connection_id = "embed.conn"
