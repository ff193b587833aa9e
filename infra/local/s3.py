"""An S3-API server for the local stack: s3proxy (Maven Central, ``org.gaul:s3proxy``) over a directory.

One process, ``s3``, on 127.0.0.1, storing objects under its home's ``data/`` (its ``filesystem-nio2`` store), so a
lake on ``s3://meterlake/...`` survives ``stack down``/``up`` like HDFS's. Not started by default (add ``s3`` to
``stack.services`` or ``stack up --services s3``); the tests start it from a session fixture.

Security: AWS signatures (v2 or v4) with an access key and secret generated on first use (``s3_access_key``,
``s3_secret_key`` in ``<state_dir>/secrets.json``, 0600); anonymous requests are refused (the data directory and
the bucket are 0700: s3proxy's filesystem stores would take a world-readable one for public-read).
Spark's directory writes (S3A deletes directory-marker keys whose "directories" still hold objects) need the
``filesystem-nio2`` store of s3proxy 4: the older ``filesystem`` one stalled each such delete for 10 s.
Clients: Python through :mod:`meterlake.lakefs` (``lake.s3_endpoint`` = :func:`endpoint`; the keys come from the
secrets when unset).
The bucket :data:`BUCKET` is created when the stack comes up.
"""
from __future__ import annotations

from infra.local import secrets
from infra.local.process import JvmProcess
from infra.local.topology import StackContext

SERVICE = "s3"
ADDRESS = "127.0.0.1"
NAME = "s3"
MAIN = "org.gaul.s3proxy.Main"
BUCKET = "meterlake"

LOGBACK = """<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} %-5level [%thread] %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def render_properties(*, port: int, access_key: str, secret_key: str, data_dir: str) -> str:
    """s3proxy's properties file. Pure."""
    return "\n".join([
        f"s3proxy.endpoint=http://{ADDRESS}:{port}",
        "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={access_key}",
        f"s3proxy.credential={secret_key}",
        "jclouds.provider=filesystem-nio2",
        f"jclouds.filesystem.basedir={data_dir}",
        "",
    ])


def endpoint(ctx: StackContext) -> str:
    return f"http://{ADDRESS}:{ctx.port(SERVICE, 'port')}"


def keys(ctx: StackContext) -> tuple[str, str]:
    """The stack's S3 access key and secret (generated into the secrets on first use)."""
    return (secrets.ensure(ctx.state_dir, "s3_access_key"), secrets.ensure(ctx.state_dir, "s3_secret_key"))


def filesystem(ctx: StackContext):
    """A pyarrow S3 filesystem on the stack's server (the same options :mod:`meterlake.lakefs` gives a lake)."""
    from meterlake import lakefs

    access, secret = keys(ctx)
    lake = ctx.settings.lake.model_copy(update={"s3_endpoint": endpoint(ctx), "s3_access_key": access,
                                                "s3_secret_key": secret, "s3_timeout_s": 10.0})
    return lakefs.s3_filesystem(lake)


def _ready(ctx: StackContext) -> bool:
    import pyarrow.fs as pafs

    filesystem(ctx).get_file_info(pafs.FileSelector("", recursive=False))  # a signed request answered
    return True


def processes(ctx: StackContext) -> list[JvmProcess]:
    home = ctx.home(NAME)
    conf, data = home / "conf", home / "data"
    heap = ctx.heap(SERVICE)
    port = ctx.port(SERVICE, "port")

    def prepare() -> None:
        access, secret = keys(ctx)
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        (conf / "s3proxy.conf").write_text(render_properties(port=port, access_key=access, secret_key=secret,
                                                             data_dir=str(data)))
        (conf / "logback.xml").write_text(LOGBACK)

    return [JvmProcess(
        name=NAME, service=SERVICE, home=home, main_class=MAIN, classpath=[f"{ctx.jar_dir(SERVICE)}/*"],
        jvm_options=[f"-Xms{heap}", f"-Xmx{heap}", f"-Dlogback.configurationFile={conf / 'logback.xml'}"],
        args=["--properties", str(conf / "s3proxy.conf")], address=ADDRESS, ports={"s3": port},
        is_ready=lambda: _ready(ctx), prepare=prepare,
    )]


def after_up(ctx: StackContext) -> None:
    """Create the lake's bucket (s3proxy's filesystem store: a directory under ``data/``), private: the provider
    takes a directory "others" may read for a public-read bucket and would answer anonymous requests."""
    bucket = ctx.home(NAME) / "data" / BUCKET
    bucket.mkdir(parents=True, exist_ok=True)
    bucket.chmod(0o700)
