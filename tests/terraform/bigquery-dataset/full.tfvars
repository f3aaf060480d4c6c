project_id     = "my-project"
dataset_id     = "image_embeddings_eu"
location       = "europe-west4"
friendly_name  = "Image embeddings"
labels         = { app = "embed-kit", env = "test" }
options        = { max_time_travel_hours = 48, storage_billing_model = "PHYSICAL" }
encryption_key = "projects/my-project/locations/europe-west4/keyRings/embed/cryptoKeys/bq"
