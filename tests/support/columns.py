"""The columns BigQuery's object tables give and the results table passes through, written out as a test oracle."""

PASS_THROUGH = {
    "uri": "STRING",
    "generation": "INT64",
    "content_type": "STRING",
    "size": "INT64",
    "md5_hash": "STRING",
    "updated": "TIMESTAMP",
}
