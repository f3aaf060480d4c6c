"""The ForceNew data: extracted from Go source, committed with its provenance, complete for the kit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.standin import forcenew
from tests.support import REPO


@pytest.fixture(scope="module")
def document() -> dict:
    return forcenew.load()


def test_data_file_names_versions_commits_and_source_files(document):
    for provider, tags in forcenew.VERSIONS.items():
        versions = document["providers"][provider]["versions"]
        assert sorted(versions) == sorted(t.lstrip("v") for t in tags)
        for version in versions.values():
            assert re.fullmatch(r"[0-9a-f]{40}", version["commit"])
            assert sorted(version["resources"]) == sorted(forcenew.RESOURCES[provider])
            for data in version["resources"].values():
                assert data["sources"] and all(s.endswith(".go") for s in data["sources"])


def test_every_resource_type_in_the_modules_is_covered(document):
    declared = set()
    for tf in (REPO / "modules").glob("*/*.tf"):
        declared |= set(re.findall(r'^resource "(\w+)"', tf.read_text(), re.M))
    covered = {t for p in document["providers"].values() for v in p["versions"].values() for t in v["resources"]}
    assert declared <= covered, f"add {sorted(declared - covered)} to forcenew.RESOURCES and regenerate"


def test_what_the_issue_audit_found_in_v7(document):
    v7 = document["providers"][forcenew.GOOGLE]["versions"]["7.45.0"]["resources"]
    expected = {
        "google_bigquery_dataset": {"dataset_id", "location", "project"},
        "google_bigquery_connection": {"connection_id", "location", "project"},
        "google_bigquery_table": {
            "table_id",
            "dataset_id",
            "project",
            "external_data_configuration.schema",
            "encryption_configuration",
        },
        "google_storage_bucket": {"name", "location", "project"},
        "google_project_iam_member": {"project", "role", "member"},
        "google_storage_bucket_iam_member": {"bucket", "role", "member"},
        "google_project_service": {"service", "project"},
    }
    for type_name, paths in expected.items():
        assert paths <= set(v7[type_name]["force_new"]), type_name
    assert "max_staleness" not in v7["google_bigquery_table"]["force_new"]
    assert v7["google_bigquery_dataset"]["diff_suppress"]["location"] == "tpgresource.CaseDiffSuppress"
    assert "location" not in v7["google_bigquery_connection"]["diff_suppress"]
    rules = forcenew.replacement_rules(document, forcenew.GOOGLE)
    assert rules["google_bigquery_dataset"]["case_insensitive"] == ["location"]
    assert rules["google_bigquery_connection"]["case_insensitive"] == []
    assert forcenew.replacement_rules(document, forcenew.TIME)["time_sleep"]["force_new"] == ["triggers"]


# ----------------------------------------------------------------------------
# the extractor, on a small repository laid out like each provider
# ----------------------------------------------------------------------------

GOOGLE_FILES = {
    "google/services/thing/resource_thing.go": """
        package thing

        func init() {
        	registry.Schema{
        		Name:   "google_thing", // not a data source
        		Type:   registry.SchemaTypeResource,
        		Schema: ResourceThing(),
        	}.Register()
        }

        func ResourceThing() *schema.Resource {
        	return &schema.Resource{
        		CustomizeDiff: customdiff.All(tpgresource.DefaultProviderProject, thingDiff),
        		Identity: &schema.ResourceIdentity{
        			SchemaFunc: func() map[string]*schema.Schema {
        				return map[string]*schema.Schema{"name": {Type: schema.TypeString, ForceNew: false}}
        			},
        		},
        		Schema: map[string]*schema.Schema{
        			"name": {
        				Type:        schema.TypeString,
        				Required:    true,
        				ForceNew:    true, // "ForceNew: false" in a comment changes nothing
        				Description: `A "name" {with braces}, ForceNew: false`,
        			},
        			"location": {
        				Type:             schema.TypeString,
        				Optional:         true,
        				ForceNew:         true,
        				DiffSuppressFunc: tpgresource.CaseDiffSuppress,
        			},
        			"labels": {Type: schema.TypeMap, Optional: true},
        			/* "ghost": {ForceNew: true}, */
        			"config": {
        				Type:     schema.TypeList,
        				Optional: true,
        				Elem:     thingConfigSchema(),
        			},
        			"policy": tpgresource.PolicyEntry("DELETE"),
        		},
        	}
        }

        func thingConfigSchema() *schema.Resource {
        	f := func() string { return "x" }
        	_ = f
        	return &schema.Resource{
        		Schema: map[string]*schema.Schema{
        			"schema": {Type: schema.TypeString, Optional: true, ForceNew: true},
        			"mode":   {Type: schema.TypeString, Optional: true},
        		},
        	}
        }
    """,
    "google/tpgresource/entries.go": """
        package tpgresource

        func PolicyEntry(d string) *schema.Schema {
        	return &schema.Schema{Type: schema.TypeString, Optional: true, ForceNew: true}
        }
    """,
    "google/tpgiamresource/resource_iam_member.go": """
        package tpgiamresource

        var IamMemberBaseSchema = map[string]*schema.Schema{
        	"role":   {Type: schema.TypeString, Required: true, ForceNew: true},
        	"member": {Type: schema.TypeString, Required: true, ForceNew: true, DiffSuppressFunc: memberSuppress},
        	"etag":   {Type: schema.TypeString, Computed: true},
        }
    """,
    "google/services/thing/iam_thing.go": """
        package thing

        var IamThingSchema = map[string]*schema.Schema{
        	"thing": {Type: schema.TypeString, Required: true, ForceNew: true},
        }
    """,
    "google/provider/provider_mmv1_resources.go": """
        package provider

        var handwrittenDatasources = map[string]*schema.Resource{
        	"google_thing": thing.DataSourceThing(),
        }

        var handwrittenIAMResources = map[string]*schema.Resource{
        	"google_thing_iam_member": tpgiamresource.ResourceIamMember(thing.IamThingSchema, thing.NewUpdater),
        }
    """,
}
TIME_FILES = {
    "internal/provider/resource_time_wait.go": """
        package provider

        func (t *waitResource) Metadata(ctx context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
        	resp.TypeName = req.ProviderTypeName + "_wait"
        }

        func (t *waitResource) Schema(ctx context.Context, req resource.SchemaRequest, resp *resource.SchemaResponse) {
        	resp.Schema = schema.Schema{
        		Attributes: map[string]schema.Attribute{
        			"duration": schema.StringAttribute{Optional: true},
        			"triggers": schema.MapAttribute{
        				Optional: true,
        				PlanModifiers: []planmodifier.Map{
        					mapplanmodifier.RequiresReplace(),
        				},
        			},
        			"id": schema.StringAttribute{
        				Computed:      true,
        				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
        			},
        		},
        	}
        }
    """,
}


def _git_repo(root: Path, files: dict[str, str], tag: str) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"], ["tag", tag]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root / ".git"


def test_extractor_reads_sdk_and_framework_schemas(tmp_path, monkeypatch):
    google = _git_repo(tmp_path / "google", GOOGLE_FILES, "v1.0.0")
    time_repo = _git_repo(tmp_path / "time", TIME_FILES, "v0.1.0")
    monkeypatch.setattr(forcenew, "VERSIONS", {forcenew.GOOGLE: ("v1.0.0",), forcenew.TIME: ("v0.1.0",)})
    monkeypatch.setattr(
        forcenew,
        "RESOURCES",
        {forcenew.GOOGLE: ("google_thing", "google_thing_iam_member"), forcenew.TIME: ("time_wait",)},
    )
    out = tmp_path / "forcenew.json"
    assert forcenew.main(["--google", str(google), "--time", str(time_repo), "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    google_data = document["providers"][forcenew.GOOGLE]["versions"]["1.0.0"]["resources"]
    thing = google_data["google_thing"]
    assert thing["force_new"] == ["config.schema", "location", "name", "policy"]
    assert thing["diff_suppress"] == {"location": "tpgresource.CaseDiffSuppress"}
    assert thing["customize_diff"] == ["tpgresource.DefaultProviderProject", "thingDiff"]
    assert thing["sources"] == ["google/services/thing/resource_thing.go", "google/tpgresource/entries.go"]
    member = google_data["google_thing_iam_member"]
    assert member["force_new"] == ["member", "role", "thing"]
    assert member["sources"] == [
        "google/provider/provider_mmv1_resources.go",
        "google/services/thing/iam_thing.go",
        "google/tpgiamresource/resource_iam_member.go",
    ]
    time_data = document["providers"][forcenew.TIME]["versions"]["0.1.0"]
    assert time_data["resources"]["time_wait"]["force_new"] == ["triggers"]
    assert re.fullmatch(r"[0-9a-f]{40}", time_data["commit"])


def test_extractor_refuses_a_resource_it_cannot_find(tmp_path, monkeypatch, capsys):
    google = _git_repo(tmp_path / "google", GOOGLE_FILES, "v1.0.0")
    time_repo = _git_repo(tmp_path / "time", TIME_FILES, "v0.1.0")
    monkeypatch.setattr(forcenew, "VERSIONS", {forcenew.GOOGLE: ("v1.0.0",), forcenew.TIME: ("v0.1.0",)})
    monkeypatch.setattr(forcenew, "RESOURCES", {forcenew.GOOGLE: ("google_nothing",), forcenew.TIME: ()})
    out = tmp_path / "forcenew.json"
    assert forcenew.main(["--google", str(google), "--time", str(time_repo), "--output", str(out)]) == 1
    assert "google_nothing" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(
    not os.environ.get("FORCENEW_GOOGLE_GIT"),
    reason="set FORCENEW_GOOGLE_GIT and FORCENEW_TIME_GIT "
    "to git dirs of the providers to check the committed data regenerates unchanged",
)
def test_committed_data_regenerates_unchanged(tmp_path, document):
    out = tmp_path / "forcenew.json"
    assert (
        forcenew.main(
            [
                "--google",
                os.environ["FORCENEW_GOOGLE_GIT"],
                "--time",
                os.environ["FORCENEW_TIME_GIT"],
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text()) == document
