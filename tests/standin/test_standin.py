"""Tests of the offline google provider stand-in (generation, environment, terraform)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tests.standin as standin
from tests.standin import generate

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")

PROVIDER_BLOCK = """
terraform {
  required_providers {
    google = { source = "hashicorp/google", version = ">= 6.0" }
  }
}
provider "google" {
  project = "test-only"
  region  = "us-central1"
}
"""


# ----------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def build() -> standin.Build:
    return standin.build_standin()


@pytest.fixture(scope="session")
def schema(build) -> dict:
    return json.loads(build.schema.read_text())


@pytest.fixture(scope="session")
def tf_env(build) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(standin.terraform_env("standin"))
    env["TF_IN_AUTOMATION"] = "1"
    return env


@pytest.fixture
def terraform(tmp_path, tf_env):
    """Write a config into a fresh directory; returns run(args) -> CompletedProcess."""

    def run(config: str | None, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        if config is not None:
            (tmp_path / "main.tf").write_text(PROVIDER_BLOCK + textwrap.dedent(config))
            init = subprocess.run(
                [TERRAFORM, "init", "-input=false", "-no-color"],
                cwd=tmp_path,
                env=tf_env,
                capture_output=True,
                text=True,
            )
            assert init.returncode == 0, init.stdout + init.stderr
        proc = subprocess.run([TERRAFORM, *args, "-no-color"], cwd=tmp_path, env=tf_env, capture_output=True, text=True)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    return run


def _block(schema: dict, type_name: str, *path: str, data: bool = False) -> dict:
    block = schema["data_sources" if data else "resources"][type_name]
    for name in path:
        block = block["blocks"][name]["block"]
    return block


# ----------------------------------------------------------------------------
# generated schema, checked against the provider's documented schema
# ----------------------------------------------------------------------------


def test_schema_covers_what_the_kit_uses(schema):
    for type_name in (
        "google_project_service",
        "google_bigquery_dataset",
        "google_bigquery_connection",
        "google_project_iam_member",
        "google_bigquery_table",
        "google_storage_bucket",
        "google_storage_bucket_iam_member",
        "google_bigquery_dataset_iam_member",
    ):
        assert type_name in schema["resources"]
    for type_name in ("google_project", "google_client_config", "google_storage_bucket"):
        assert type_name in schema["data_sources"]
    # every resource and data source of the package, not a hand-picked list
    assert len(schema["resources"]) > 1000 and len(schema["data_sources"]) > 300


def test_bigquery_connection_cloud_resource(schema):
    conn = schema["resources"]["google_bigquery_connection"]
    cloud = conn["blocks"]["cloud_resource"]
    assert (cloud["nesting"], cloud["min_items"], cloud["max_items"]) == ("list", 0, 1)
    assert cloud["block"]["attributes"]["service_account_id"] == {"type": "string", "computed": True}
    assert conn["attributes"]["id"] == {"type": "string", "optional": True, "computed": True}
    assert conn["attributes"]["name"] == {"type": "string", "computed": True}
    assert conn["attributes"]["connection_id"] == {"type": "string", "optional": True, "computed": True}
    # a required block nested in an optional one: at least one access_role inside aws
    access_role = conn["blocks"]["aws"]["block"]["blocks"]["access_role"]
    assert (access_role["min_items"], access_role["max_items"]) == (1, 1)
    assert conn["blocks"]["timeouts"]["nesting"] == "single"


def test_required_arguments(schema):
    ds = schema["resources"]["google_bigquery_dataset"]["attributes"]
    assert ds["dataset_id"] == {"type": "string", "required": True}
    assert ds["labels"] == {"type": ["map", "string"], "optional": True}
    assert ds["default_table_expiration_ms"]["type"] == "number"
    member = schema["resources"]["google_project_iam_member"]["attributes"]
    for name in ("project", "role", "member"):
        assert member[name] == {"type": "string", "required": True}, name
    bucket_member = schema["resources"]["google_storage_bucket_iam_member"]["attributes"]
    assert {n for n, a in bucket_member.items() if a.get("required")} == {"bucket", "role", "member"}


def test_bigquery_table_external_data_configuration(schema):
    table = schema["resources"]["google_bigquery_table"]
    assert table["attributes"]["deletion_protection"] == {"type": "bool", "optional": True}
    ext = table["blocks"]["external_data_configuration"]
    assert ext["max_items"] == 1
    attrs = ext["block"]["attributes"]
    assert attrs["source_uris"] == {"type": ["list", "string"], "required": True}
    assert attrs["autodetect"] == {"type": "bool", "required": True}
    for name in ("object_metadata", "connection_id", "metadata_cache_mode"):
        assert attrs[name] == {"type": "string", "optional": True}, name
    # blocks nested three levels deep
    column = _block(
        schema, "google_bigquery_table", "external_data_configuration", "bigtable_options", "column_family"
    )["blocks"]["column"]
    assert column["nesting"] == "list" and column["max_items"] == 0
    assert column["block"]["attributes"]["qualifier_string"] == {"type": "string", "optional": True}


def test_storage_bucket_sets_and_data_source_objects(schema):
    rule = schema["resources"]["google_storage_bucket"]["blocks"]["lifecycle_rule"]
    assert rule["nesting"] == "list"
    action = rule["block"]["blocks"]["action"]
    assert (action["nesting"], action["min_items"], action["max_items"]) == ("set", 1, 1)
    assert rule["block"]["blocks"]["condition"]["block"]["attributes"]["with_state"] == {
        "type": "string",
        "optional": True,
        "computed": True,
    }
    # in a data source the same structure is a computed attribute of object type
    data_rule = schema["data_sources"]["google_storage_bucket"]["attributes"]["lifecycle_rule"]
    assert data_rule["computed"] is True
    kind, (obj, fields) = data_rule["type"]
    assert (kind, obj) == ("list", "object")
    assert fields["action"] == ["set", ["object", {"storage_class": "string", "type": "string"}]]
    assert fields["condition"][1][1]["matches_prefix"] == ["list", "string"]


def test_data_sources_and_provider_config(schema):
    project = schema["data_sources"]["google_project"]["attributes"]
    assert project["project_id"] == {"type": "string", "optional": True}
    assert project["number"] == {"type": "string", "computed": True}
    client = schema["data_sources"]["google_client_config"]["attributes"]
    assert client["access_token"] == {"type": "string", "computed": True}
    provider = schema["provider"]["attributes"]
    for name in ("project", "region", "zone", "credentials", "billing_project"):
        assert provider[name] == {"type": "string", "optional": True}, name
    assert provider["user_project_override"]["type"] == "bool"
    assert provider["default_labels"]["type"] == ["map", "string"]
    assert "alias" not in provider  # a meta-argument, not schema
    assert "batching" in schema["provider"]["blocks"]


def test_renamed_cdktf_property_keeps_terraform_name(schema):
    # cdktf names the config property ``buildAttribute``; terraform's name is ``build``
    build_block = schema["resources"]["google_cloudbuild_trigger"]["blocks"]["build"]
    assert build_block["max_items"] == 1 and "step" in build_block["block"]["blocks"]


def test_generate_subset_matches_full_build(build, schema):
    wheel = standin.ensure_wheel()
    only = [("resource", "google_bigquery_connection"), ("data", "google_project")]
    doc = generate.generate(wheel, only)
    assert doc["resources"] == {"google_bigquery_connection": schema["resources"]["google_bigquery_connection"]}
    assert doc["data_sources"] == {"google_project": schema["data_sources"]["google_project"]}
    assert doc["provider"] == schema["provider"]
    with pytest.raises(generate.SchemaError, match="google_no_such_thing"):
        generate.generate(wheel, [("resource", "google_no_such_thing")])


def test_parser_rejects_unknown_typescript():
    text = textwrap.dedent("""\
        export class Thing extends cdktf.TerraformResource {
          public static readonly tfResourceType = "google_thing";
          // mystery - computed: true, optional: false, required: false
          public get mystery() {
            return this.somethingNew('mystery');
          }
        }
        """)
    with pytest.raises(generate.SchemaError, match="mystery"):
        generate.build_module(generate.parse_module("thing", text))


# ----------------------------------------------------------------------------
# build cache and environments
# ----------------------------------------------------------------------------


def test_cached_build_is_reused_quickly(build):
    t0 = time.monotonic()
    again = standin.build_standin()
    assert again == build
    assert time.monotonic() - t0 < 1.0
    assert build.root.parent == standin.REPO / ".cache" / "standin" / "builds"
    assert os.access(build.executable, os.X_OK)
    assert build.key in build.executable.read_text()


def test_build_key_follows_generator_data_and_wheels(build, tmp_path, monkeypatch):
    wheels = {p.name: standin.ensure_wheel(p) for p in standin.PROVIDERS}
    assert standin._build_key(wheels) == build.key
    for name in standin._BUILD_INPUTS:
        shutil.copy(standin.HERE / name, tmp_path / name)
    monkeypatch.setattr(standin, "HERE", tmp_path)
    assert standin._build_key(wheels) == build.key
    for name in ("generate.py", "forcenew.json"):
        original = (tmp_path / name).read_text()
        (tmp_path / name).write_text(original + "\n")
        assert standin._build_key(wheels) != build.key, f"{name} does not change the build key"
        (tmp_path / name).write_text(original)
    monkeypatch.setattr(standin, "HERE", standin.REPO / "tests" / "standin")
    for provider in standin.PROVIDERS:
        fake_wheel = tmp_path / wheels[provider.name].name
        fake_wheel.write_bytes(b"not the real wheel")
        assert standin._build_key({**wheels, provider.name: fake_wheel}) != build.key


def test_standin_env(build):
    env = standin.terraform_env("standin")
    assert env["CHECKPOINT_DISABLE"] == "1"
    assert env["TF_CLI_CONFIG_FILE"] == str(build.cli_config)
    assert env["TF_CLI_CONFIG_FILE"] != "/root/.terraformrc"
    rc = Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    assert "filesystem_mirror" in rc and f'"{build.mirror}"' in rc
    assert 'exclude = ["registry.terraform.io/hashicorp/google", "registry.terraform.io/hashicorp/time"]' in rc
    assert Path(env["TF_PLUGIN_CACHE_DIR"]).is_dir()


def test_registry_env():
    env = standin.terraform_env("registry")
    rc = Path(env["TF_CLI_CONFIG_FILE"]).read_text()
    assert "direct {}" in rc and "filesystem_mirror" not in rc
    creds = json.loads(Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text())
    assert creds == {"type": "service_account", "project_id": "test-only"}
    assert Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).is_relative_to(standin.CACHE)
    assert env["CHECKPOINT_DISABLE"] == "1"


def test_mode_from_environment(monkeypatch, build):
    monkeypatch.setenv("EMBED_TF_PROVIDER", "registry")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in standin.terraform_env()
    monkeypatch.delenv("EMBED_TF_PROVIDER")
    assert standin.terraform_env()["TF_CLI_CONFIG_FILE"] == str(build.cli_config)
    monkeypatch.setenv("EMBED_TF_PROVIDER", "bogus")
    with pytest.raises(ValueError, match="bogus.*standin, registry"):
        standin.terraform_env()
    with pytest.raises(ValueError, match="EMBED_TF_PROVIDER"):
        standin.terraform_env("real")


def _standin_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m tests.standin ARGS`` from the repository."""
    command = [sys.executable, "-m", "tests.standin", *args]
    return subprocess.run(command, cwd=standin.REPO, env=env, capture_output=True, text=True)


def test_cli_print_env(build):
    env = {k: v for k, v in os.environ.items() if k != "EMBED_TF_PROVIDER"}
    proc = _standin_cli("--print-env", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert f"export TF_CLI_CONFIG_FILE={build.cli_config}" in lines
    assert "export CHECKPOINT_DISABLE=1" in lines
    assert _standin_cli("--mode", "nope").returncode != 0
    # a failed build makes `eval "$(... --print-env)" && terraform ...` stop
    failed = _standin_cli("--print-env", env={**env, "EMBED_TF_PROVIDER": "bogus"})
    assert failed.returncode == 1 and failed.stdout.strip() == "false"
    assert "bogus" in failed.stderr


# ----------------------------------------------------------------------------
# terraform against the stand-in
# ----------------------------------------------------------------------------


# Each configuration terraform validate must refuse against the generated schema, and what it says.
REJECTED = {
    "misspelt argument": (
        """
        resource "google_bigquery_dataset" "ds" {
          dataset_idd = "embeddings"
        }
        """,
        ["Unsupported argument", 'An argument named "dataset_idd" is not expected here'],
    ),
    "missing required argument": (
        """
        resource "google_project_iam_member" "m" {
          role   = "roles/bigquery.user"
          member = "user:someone@example.com"
        }
        """,
        ["Missing required argument", 'The argument "project" is required'],
    ),
    "wrong types and block counts": (
        """
        resource "google_bigquery_connection" "conn" {
          location = "US"
          cloud_resource {}
          cloud_resource {}
        }
        resource "google_bigquery_table" "t" {
          dataset_id = "d"
          table_id   = "t"
          external_data_configuration {
            autodetect  = false
            source_uris = "gs://not-a-list"
            no_such     = 1
          }
        }
        """,
        [
            "Too many cloud_resource blocks",
            "Incorrect attribute value type",
            'An argument named "no_such" is not expected here',
        ],
    ),
    "a computed-only value set": (
        """
        resource "google_bigquery_connection" "conn" {
          location = "US"
          cloud_resource {
            service_account_id = "sa@example.com"
          }
        }
        """,
        ["Computed attributes cannot be set", '"cloud_resource.0.service_account_id"'],
    ),
}


@needs_terraform
@pytest.mark.parametrize("case", REJECTED)
def test_validate_rejects_what_the_schema_forbids(terraform, case):
    config, messages = REJECTED[case]
    proc = terraform(config, "validate")
    said = " ".join(proc.stderr.split())
    assert proc.returncode != 0
    assert [m for m in messages if m not in said] == [], proc.stderr


@needs_terraform
def test_validate_accepts_correct_config(terraform):
    proc = terraform(
        """
        data "google_project" "p" {}
        resource "google_project_service" "bq" {
          service            = "bigquery.googleapis.com"
          disable_on_destroy = false
        }
        resource "google_bigquery_dataset" "ds" {
          dataset_id = "embeddings"
          location   = "US"
          labels     = { kit = "embed" }
        }
        resource "google_storage_bucket" "b" {
          name                        = "images-${data.google_project.p.number}"
          location                    = "US"
          uniform_bucket_level_access = true
          lifecycle_rule {
            action { type = "Delete" }
            condition { age = 30 }
          }
        }
        resource "google_storage_bucket_iam_member" "r" {
          bucket = google_storage_bucket.b.name
          role   = "roles/storage.objectViewer"
          member = "user:someone@example.com"
        }
    """,
        "validate",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "The configuration is valid" in proc.stdout


@needs_terraform
def test_plan_marks_computed_values_unknown(terraform):
    terraform(
        """
        data "google_project" "p" {}
        data "google_client_config" "c" {}
        resource "google_bigquery_connection" "conn" {
          connection_id = "vertex"
          location      = "US"
          cloud_resource {}
        }
        resource "google_project_iam_member" "vertex" {
          project = data.google_project.p.project_id
          role    = "roles/aiplatform.user"
          member  = "serviceAccount:${google_bigquery_connection.conn.cloud_resource[0].service_account_id}"
        }
        resource "google_bigquery_dataset_iam_member" "reader" {
          dataset_id = "embeddings"
          role       = "roles/bigquery.dataViewer"
          member     = "serviceAccount:service-${data.google_project.p.number}@gcp-sa-bigqueryconnection.iam.gserviceaccount.com"
        }
    """,
        "plan",
        "-input=false",
        "-out=plan.tfplan",
        check=True,
    )
    shown = terraform(None, "show", "-json", "plan.tfplan", check=True)
    plan = json.loads(shown.stdout)
    changes = {rc["address"]: rc["change"] for rc in plan["resource_changes"]}
    assert {c["actions"][0] for c in changes.values()} == {"create"}

    conn = changes["google_bigquery_connection.conn"]
    assert conn["after"]["connection_id"] == "vertex"
    assert conn["after_unknown"]["id"] is True
    assert conn["after_unknown"]["name"] is True
    assert conn["after_unknown"]["cloud_resource"] == [{"service_account_id": True}]
    assert "location" not in conn["after_unknown"]

    member = changes["google_project_iam_member.vertex"]
    assert member["after_unknown"]["member"] is True
    assert member["after_unknown"]["id"] is True
    assert member["after"]["project"] == "test-only"  # data source falls back to the provider's project
    assert member["after"]["role"] == "roles/aiplatform.user"

    reader = changes["google_bigquery_dataset_iam_member.reader"]
    assert reader["after"]["member"] == (
        "serviceAccount:service-123456789012@gcp-sa-bigqueryconnection.iam.gserviceaccount.com"
    )
    assert reader["after_unknown"]["project"] is True


@needs_terraform
def test_plan_unknowns_inside_nested_blocks(terraform):
    terraform(
        """
        resource "google_bigquery_table" "t" {
          dataset_id = "embeddings"
          table_id   = "images"
          external_data_configuration {
            autodetect          = false
            source_uris         = ["gs://bucket/*"]
            object_metadata     = "SIMPLE"
            metadata_cache_mode = "AUTOMATIC"
          }
          encryption_configuration {
            kms_key_name = "projects/p/locations/us/keyRings/r/cryptoKeys/k"
          }
        }
    """,
        "plan",
        "-input=false",
        "-out=plan.tfplan",
        check=True,
    )
    plan = json.loads(terraform(None, "show", "-json", "plan.tfplan", check=True).stdout)
    (change,) = [rc["change"] for rc in plan["resource_changes"]]
    ext_after = change["after"]["external_data_configuration"][0]
    assert ext_after["source_uris"] == ["gs://bucket/*"]
    ext_unknown = change["after_unknown"]["external_data_configuration"][0]
    assert ext_unknown["schema"] is True  # optional + computed, unset
    assert "connection_id" not in ext_unknown  # optional only: stays null
    assert change["after_unknown"]["encryption_configuration"] == [{"kms_key_version": True}]


@needs_terraform
def test_apply_is_refused(terraform):
    proc = terraform(
        """
        resource "google_project_service" "bq" {
          service = "bigquery.googleapis.com"
        }
    """,
        "apply",
        "-input=false",
        "-auto-approve",
    )
    assert proc.returncode != 0
    assert "offline stand-in provider: plan only" in proc.stderr


REPLACEMENT_CONFIG = """
    resource "google_bigquery_dataset" "moved" {
      dataset_id = "embeddings"
      location   = "%(moved)s"
    }
    resource "google_bigquery_dataset" "kept" {
      dataset_id  = "archive"
      location    = "%(kept)s"
      description = "%(description)s"
    }
    resource "google_bigquery_table" "t" {
      dataset_id = "embeddings"
      table_id   = "images"
      external_data_configuration {
        autodetect  = false
        source_uris = ["gs://bucket/*"]
        schema      = "%(schema)s"
      }
    }
    resource "time_sleep" "wait" {
      create_duration = "1s"
      triggers        = { account = "%(account)s" }
    }
"""


@needs_terraform
def test_plan_replaces_on_force_new_attributes_only(terraform, tmp_path):
    from tests.support.state import state_from_plan

    before = {"moved": "EU", "kept": "EU", "description": "a", "schema": "[]", "account": "sa-1"}
    terraform(REPLACEMENT_CONFIG % before, "plan", "-input=false", "-out=plan.tfplan", check=True)
    created = json.loads(terraform(None, "show", "-json", "plan.tfplan", check=True).stdout)
    schemas = json.loads(terraform(None, "providers", "schema", "-json", check=True).stdout)
    (tmp_path / "prior.tfstate").write_text(json.dumps(state_from_plan(created, schemas)))

    after = {
        "moved": "US",
        "kept": "eu",
        "description": "b",
        "account": "sa-2",
        "schema": '[{\\"name\\": \\"uri\\", \\"type\\": \\"STRING\\"}]',
    }
    (tmp_path / "main.tf").write_text(PROVIDER_BLOCK + textwrap.dedent(REPLACEMENT_CONFIG % after))
    terraform(None, "plan", "-input=false", "-refresh=false", "-state=prior.tfstate", "-out=plan.tfplan", check=True)
    plan = json.loads(terraform(None, "show", "-json", "plan.tfplan", check=True).stdout)
    changes = {rc["address"]: rc for rc in plan["resource_changes"]}

    # ForceNew in the provider's source: a replacement, with the attribute that forced it.
    moved, table, sleep = (
        changes[a] for a in ("google_bigquery_dataset.moved", "google_bigquery_table.t", "time_sleep.wait")
    )
    assert moved["change"]["actions"] == ["delete", "create"]
    assert moved["action_reason"] == "replace_because_cannot_update"
    assert moved["change"]["replace_paths"] == [["location"]]
    assert table["change"]["replace_paths"] == [["external_data_configuration", 0, "schema"]]
    assert sleep["change"]["actions"] == ["delete", "create"]
    assert sleep["change"]["replace_paths"] == [["triggers"]]
    # A replacement plans the new object from scratch: computed values are unknown again.
    assert moved["change"]["after_unknown"]["id"] is True

    # Not ForceNew: an update in place. The dataset location's diff is case-insensitive: no change.
    kept = changes["google_bigquery_dataset.kept"]["change"]
    assert kept["actions"] == ["update"]
    assert kept["after"]["location"] == "EU" and kept["after"]["description"] == "b"
    assert "replace_paths" not in kept
