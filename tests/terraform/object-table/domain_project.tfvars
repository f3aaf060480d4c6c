project_id = "example.com:my-project"
dataset    = { id = "bqml_tutorial", location = "US" }
connection = {
  id              = "example.com:my-project.us.embed_conn"
  location        = "US"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris = ["gs://my-images-bucket/photos/*"]
