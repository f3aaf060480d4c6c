project_id       = "my-project"
location         = "europe-west4"
connection_id    = "embed-conn-eu"
additional_roles = ["roles/storage.objectViewer", "roles/serviceusage.serviceUsageConsumer"]
service_account_wait = "3m"
