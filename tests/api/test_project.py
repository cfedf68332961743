"""The project around the API: token command, OpenAPI docs, settings, and the schema's one source."""

from __future__ import annotations

from io import StringIO

import pytest
import sqlalchemy as sa
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from apps.jobs.models import Batch, Job
from apps.reelqueue_api.database import django_database
from src.infrastructure.db.tables import batches, jobs


def test_create_api_token_prints_a_working_token(client):
    out = StringIO()
    call_command("create_api_token", "carol", stdout=out)
    token = out.getvalue().strip()

    assert client.get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_create_api_token_makes_staff_and_shows_a_token_only_when_it_makes_it(client, django_user_model):
    first, again = StringIO(), StringIO()
    call_command("create_api_token", "dave", "--staff", stdout=first)
    with pytest.raises(CommandError, match="already has an API token.*--rotate"):
        call_command("create_api_token", "dave", stdout=again)
    token = first.getvalue().strip()

    assert again.getvalue() == ""
    assert django_user_model.objects.get(username="dave").is_staff
    assert client.get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_create_api_token_rotate_replaces_the_token_at_once(client):
    first, second = StringIO(), StringIO()
    call_command("create_api_token", "erin", stdout=first)
    call_command("create_api_token", "erin", "--rotate", stdout=second)
    old, new = first.getvalue().strip(), second.getvalue().strip()

    assert old != new
    assert client.get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {old}").status_code == 401
    assert client.get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {new}").status_code == 200


def test_the_openapi_schema_and_its_docs_are_served_to_a_token(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/video-jobs", "/api/v1/ai-jobs", "/api/v1/ai-jobs/batch", "/api/v1/jobs",
                 "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/cancel", "/api/v1/jobs/{job_id}/retry",
                 "/api/v1/batches/{batch_id}", "/api/v1/providers", "/api/v1/uploads",
                 "/api/v1/webhooks/luma/{job_id}/{token}", "/api/v1/files/{key}"):
        assert path in schema["paths"], path
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    assert api.get("/api/docs/").status_code == 200


def test_the_schema_documents_the_signed_file_urls_and_the_page_bounds(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    files = schema["paths"]["/api/v1/files/{key}"]
    assert set(files) == {"get", "head", "put"}
    assert files["put"]["security"] == [{}]  # the signature is the credential
    assert {"201", "400", "404", "411", "413"} <= set(files["put"]["responses"])
    limit = next(p for p in schema["paths"]["/api/v1/jobs"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)


def test_the_schema_and_its_docs_need_a_token(client):
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code == 401


def test_database_urls_become_django_databases():
    sqlite = django_database("sqlite:///var/reelqueue.sqlite3")
    postgres = django_database("postgresql+psycopg2://rq:secret@db.internal:5433/reelqueue")

    assert (sqlite["ENGINE"], sqlite["NAME"]) == ("django.db.backends.sqlite3", "var/reelqueue.sqlite3")
    assert {k: postgres[k] for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")} == {
        "ENGINE": "django.db.backends.postgresql", "NAME": "reelqueue", "USER": "rq", "PASSWORD": "secret",
        "HOST": "db.internal", "PORT": "5433"}
    with pytest.raises(ImproperlyConfigured):
        django_database("mysql://x@y/z")


# Django field class -> the SQLAlchemy type names it may map.
COMPATIBLE = {
    "CharField": {"VARCHAR", "STRING"}, "TextField": {"TEXT"}, "IntegerField": {"INTEGER"},
    "BigIntegerField": {"BIGINT", "BIGINTEGER"},
    "FloatField": {"FLOAT", "DOUBLE PRECISION", "DOUBLE_PRECISION"},
    "DateTimeField": {"TIMESTAMP", "DATETIME"}, "JsonColumn": {"JSON"}, "BooleanField": {"BOOLEAN"},
}


@pytest.mark.postgres
@pytest.mark.parametrize(("model", "table"), [(Job, jobs), (Batch, batches)])
def test_django_models_match_the_tables_the_migrations_create(postgres_url, model, table):
    """On real Postgres: the migrated columns are exactly the model's fields, with the same types."""
    from src.infrastructure.db.migrations import upgrade

    upgrade(postgres_url)
    engine = sa.create_engine(postgres_url)
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns(table.name)}
    engine.dispose()
    fields = {f.column: f for f in model._meta.concrete_fields}

    assert model._meta.managed is False and model._meta.db_table == table.name
    assert set(fields) == set(columns) == set(table.c.keys())
    for name, field in fields.items():
        column, declared = columns[name], table.c[name]
        assert str(column["type"]).split("(")[0] in COMPATIBLE[type(field).__name__], name
        assert field.null == column["nullable"], name
        assert field.primary_key == declared.primary_key, name
        length = getattr(column["type"], "length", None)
        if length is not None:
            assert field.max_length == length, name
        if isinstance(column["type"], sa.DateTime):
            assert column["type"].timezone, name
