# expect-error: The connection location (EU) must match the dataset location (US)
project_id = "my-project"
dataset    = { id = "bqml_tutorial", location = "US" }
connection = {
  id              = "projects/my-project/locations/eu/connections/embed_conn"
  location        = "EU"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris = ["gs://my-images-bucket/photos/*"]
