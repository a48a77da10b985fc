"""``wirebeat setup [--index-management] [--dashboards] [--pipelines]`` (the ``setup`` hook).

No flag means all of them. Index management talks to the cluster of ``output.elasticsearch``
(Elasticsearch 8/9 through the official client, OpenSearch and older Elasticsearch through
plain HTTP): the ILM policy (skipped with a note on OpenSearch, which has no ILM), the
index template (always overwritten, as libbeat's setup does) and, without data streams, the
rollover write alias. Dashboards go to ``setup.kibana``. Any failure ends in one line,
``Exiting: <reason>``, and exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from shipper.agent.settings import Settings
from shipper.outputs.elasticsearch import ElasticsearchConfig
from shipper.outputs.http import HttpClient
from shipper.setup import build
from shipper.setup.client import IndexAdmin, SetupError, connect
from shipper.setup.fields import FieldsError
from shipper.setup.ilm import PolicyError
from shipper.setup.kibana import KibanaError, import_objects, kibana_version, to_ndjson
from shipper.setup.template import TemplateError, parse_version

log = logging.getLogger("setup")


def say(text: str) -> None:
    print(text, flush=True)


def run_setup(settings: Settings, args: argparse.Namespace) -> int:
    index_mgmt = bool(args.index_management or args.template or args.ilm_policy)
    dashboards = bool(args.dashboards)
    pipelines = bool(args.pipelines)
    if not (index_mgmt or dashboards or pipelines):
        index_mgmt = dashboards = pipelines = True
    try:
        if index_mgmt:
            setup_index_management(
                settings,
                template=not args.ilm_policy or args.template,
                ilm=not args.template or args.ilm_policy,
            )
        if pipelines:
            say("No ingest pipelines to load (Packetbeat ships none).")
        if dashboards:
            setup_dashboards(settings)
    except (SetupError, KibanaError, TemplateError, FieldsError, PolicyError) as exc:
        print(f"Exiting: {exc}", file=sys.stderr)
        return 1
    return 0


def es_config(settings: Settings) -> ElasticsearchConfig:
    cfg = settings.output.get("elasticsearch")
    if not isinstance(cfg, ElasticsearchConfig):
        raise SetupError(
            "index management requested but the Elasticsearch output is not configured/enabled "
            "(set output.elasticsearch.hosts, e.g. -E output.elasticsearch.hosts=[localhost:9200])"
        )
    return cfg


def setup_index_management(settings: Settings, template: bool = True, ilm: bool = True) -> None:
    cfg = es_config(settings)
    if cfg.target_index and not settings.setup.template.pattern and settings.setup.template.enabled:
        raise SetupError(
            "output.elasticsearch.index is set: setup.template.name and setup.template.pattern have to be set"
        )
    admin = connect(cfg)
    try:
        say(f"Connected to {admin.info.describe()}")
        _index_management(settings, admin, template, ilm)
    finally:
        admin.close()
    say("Index setup finished.")


def _index_management(settings: Settings, admin: IndexAdmin, template: bool, ilm: bool) -> None:
    target = admin.info.target
    ilm_on = build.ilm_active(settings, target)
    if ilm and settings.setup.ilm.enabled:
        if not target.has_ilm:
            say(
                f"{admin.info.describe()} has no ILM: the lifecycle policy is not installed and the "
                "template carries no lifecycle settings (manage retention with ISM)."
            )
        else:
            name = build.policy_name(settings)
            exists = settings.setup.ilm.check_exists and admin.policy_exists(name)
            if exists and not settings.setup.ilm.overwrite:
                say(f"ILM policy {name} exists already (setup.ilm.overwrite is false).")
            else:
                admin.put_policy(name, build.policy_for(settings, target))
                say(f"ILM policy {name} loaded.")
    if not template:
        return
    if not settings.setup.template.enabled:
        say("Template loading is disabled (setup.template.enabled: false).")
        return
    t = build.template_for(settings, target)
    admin.put_template(t)
    kind = "legacy template" if t.legacy else "index template"
    mode = " (data stream)" if t.data_stream else ""
    say(f"{kind.capitalize()} {t.name} loaded for {t.pattern}{mode}.")
    if ilm_on and not t.data_stream and not admin.alias_exists(t.name):
        admin.create_write_index(t.name)
        say(f"Write alias {t.name} created.")


def kibana_client(settings: Settings) -> HttpClient:
    k = settings.setup.kibana
    es = settings.output.get("elasticsearch")
    username, password, api_key = k.username, k.password, k.api_key
    if not (username or api_key) and isinstance(es, ElasticsearchConfig):
        # libbeat falls back to the Elasticsearch output's credentials.
        username, password, api_key = es.username, es.password, es.api_key
    return HttpClient(
        [k.host],
        scheme=k.protocol,
        default_port=5601,
        path=k.path,
        username=username,
        password=password,
        api_key=api_key,
        headers=k.headers,
        ssl_settings=k.ssl,
        timeout=k.timeout,
    )


def setup_dashboards(settings: Settings) -> None:
    d = settings.setup.dashboards
    objects = build.kibana_objects(settings)
    client = kibana_client(settings)
    try:
        attempts = 1
        if d.retry.enabled:
            attempts = 1 + (d.retry.maximum if d.retry.maximum > 0 else 30)
        version = kibana_version(client, attempts, d.retry.interval)
        if parse_version(version)[0] < 8:
            raise KibanaError(f"Kibana {version} is too old for these dashboards (8.0 or newer is needed)")
        say(f"Connected to Kibana {version} at {client.url}")
        n = import_objects(client, to_ndjson(objects, d.string_replacements), settings.setup.kibana.space.id)
    finally:
        client.close()
    say(f"Loaded dashboards ({n} saved objects).")
