# expect-error: var.bucket_create.name (my-new-images-bucket) is not one of the buckets in var.source_uris
project_id = "my-project"
dataset    = { id = "bqml_tutorial", location = "US" }
connection = {
  id              = "projects/my-project/locations/us/connections/embed_conn"
  location        = "US"
  service_account = "bqcx-123456789012-abcd@gcp-sa-bigquery-condel.iam.gserviceaccount.com"
}
source_uris   = ["gs://my-images-bucket/photos/*"]
bucket_create = { name = "my-new-images-bucket" }
