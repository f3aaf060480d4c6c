project_id = "my-project"
services = [
  "bigquery.googleapis.com",
  "bigqueryconnection.googleapis.com",
  "aiplatform.googleapis.com",
  "storage.googleapis.com",
  "cloudkms.googleapis.com",
]
