# expect-error: var.service_account_wait must be a number followed by ms, s, m or h
project_id           = "my-project"
location             = "US"
connection_id        = "embed_conn"
service_account_wait = "2 minutes"
