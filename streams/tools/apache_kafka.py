"""A real Apache Kafka broker (single node, KRaft) for tests that Tansu cannot answer faithfully.

Tansu, the embedded default, keeps nothing on restart, reports ListOffsets 'latest' wrongly and
is not the broker production runs. This module fetches the broker jars from Maven Central with
Maven (cached per version) and runs `kafka.Kafka` in a child JVM. Java 17+ and Maven are
optional: `missing_requirements()` names what is missing so callers can skip instead of failing.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from streams.tools.embedded import free_port, listening
from streams.tools.processes import die_with_parent

#: Newest org.apache.kafka:kafka_2.13 on Maven Central (4.0.0 … 4.4.0) checked to resolve and run on Java 17.
KAFKA_VERSION = "4.4.0"
#: The common name of the mTLS listener's client certificates (a super user where ACLs are on).
MTLS_CLIENT = "edu-scorer-client"
#: SLF4J 1.x -> log4j2 binding: kafka_2.13 ships log4j-core and slf4j-api 1.7 but no binding, so without
#: it the broker logs nothing. Maven's nearest-wins keeps kafka's own log4j-api/core versions.
LOG4J_SLF4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MIN_JAVA = 17
_MARKER = "classpath.txt"
_PROBE_GROUP = "edu-scorer-readiness-probe"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>edu-scorer</groupId><artifactId>apache-kafka-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
"""


def java_major_version() -> int | None:
    """The major version of `java` on PATH (8 for "1.8.0_x"), or None when absent or unparsable."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def default_cache_dir(version: str = KAFKA_VERSION) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edu-scorer" / f"apache-kafka-{version}"


def _cached_classpath(cache_dir: Path) -> str | None:
    """The classpath a previous resolution recorded, if every jar it lists is still there."""
    marker = cache_dir / _MARKER
    if not marker.is_file():
        return None
    jars = [cache_dir / "jars" / name for name in marker.read_text().split()]
    if not jars or not all(jar.is_file() for jar in jars):
        return None
    return os.pathsep.join(str(jar) for jar in jars)


def missing_requirements(cache_dir: Path | None = None, version: str = KAFKA_VERSION) -> str | None:
    """Why an Apache Kafka broker cannot run here (a skip reason), or None. Maven is only needed
    until the jars are cached."""
    if shutil.which("java") is None:
        return "java not found on PATH"
    major = java_major_version()
    if major is None or major < MIN_JAVA:
        return f"java on PATH is version {major or 'unknown'}; Apache Kafka {version} needs Java {MIN_JAVA}+"
    if _cached_classpath(cache_dir or default_cache_dir(version)) is None and shutil.which("mvn") is None:
        return "mvn not found on PATH (needed once to fetch the Apache Kafka jars)"
    return None


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def broker_classpath(cache_dir: Path | None = None, version: str = KAFKA_VERSION, timeout: float = 900.0) -> str:
    """The broker's Java classpath: kafka_2.13:<version> and its runtime dependencies, copied by Maven
    into `cache_dir/jars` once; later calls reuse them (the marker lists the jars)."""
    cache_dir = cache_dir or default_cache_dir(version)
    cached = _cached_classpath(cache_dir)
    if cached is not None:
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn not found on PATH: cannot fetch the Apache Kafka jars")
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "pom.xml").write_text(_POM.format(kafka=version, log4j=LOG4J_SLF4J_VERSION))
    jars = cache_dir / "jars"
    shutil.rmtree(jars, ignore_errors=True)  # no stale jars of an interrupted run on the classpath
    command = [mvn, "-B", "-ntp", "-Dstyle.color=never", "-f", str(cache_dir / "pom.xml"),
               f"{DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={jars}", "-DincludeScope=runtime"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""  # bytes even with text=True
        raise RuntimeError(f"Maven did not fetch Apache Kafka {version} in {timeout:.0f}s:\n{_tail(output)}") from exc
    names = sorted(jar.name for jar in jars.glob("*.jar")) if jars.is_dir() else []
    if done.returncode != 0 or not any(name.startswith(f"kafka_2.13-{version}") for name in names):
        raise RuntimeError(f"Maven could not fetch Apache Kafka {version} (exit {done.returncode}):\n"
                           f"{_tail(done.stdout + done.stderr)}")
    (cache_dir / _MARKER).write_text("\n".join(names) + "\n")  # written last: marks the cache complete
    return os.pathsep.join(str(jars / name) for name in names)


def _cluster_id() -> str:
    """A Kafka Uuid string (url-safe base64, no padding), as `StorageTool random-uuid` prints, without a JVM."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these too: they read as CLI options
            return text


def _ready(bootstrap: str) -> bool:
    """A Metadata request answered and the group coordinator done loading its offsets, via aiokafka in a
    fresh loop on its own thread (callers may be inside a loop).

    The second half matters after a restart: while loading, the broker answers OffsetFetch with a
    top-level COORDINATOR_LOAD_IN_PROGRESS, which aiokafka (0.14) ignores and reports as "no committed
    offset". With offsets.topic.num.partitions=1 one probe group covers every group.
    """
    from aiokafka.client import AIOKafkaClient, CoordinationType
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.commit import OffsetFetchRequest

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await client.bootstrap()  # a Metadata request
            node = await client.coordinator_lookup(CoordinationType.GROUP, _PROBE_GROUP)  # creates the offsets topic
            response = await client.send(node, OffsetFetchRequest(_PROBE_GROUP, None))
            return getattr(response, "error_code", 0) == 0
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await client.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(probe())).result()


def _broker_certificate(directory: Path) -> Path:
    """A CA (`ca.pem`) and, signed by it, a key and certificate for 127.0.0.1 in one PEM file, as Kafka's PEM
    key store takes them; made once per directory."""
    keystore = directory / "broker-keystore.pem"
    if keystore.exists():
        return keystore
    directory.mkdir(parents=True, exist_ok=True)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl not found on PATH: cannot make the broker's TLS certificate")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for args in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                  "-subj", "/CN=edu-scorer test CA"],
                 ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
                  "-subj", "/CN=127.0.0.1"],
                 ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                  "-out", "broker.pem", "-days", "2", "-extfile", "san.ext"]):
        done = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {_tail(done.stderr)}")
    keystore.write_text((directory / "broker.key").read_text() + (directory / "broker.pem").read_text())
    return keystore


class ApacheKafkaBroker:
    """One KRaft node (broker + controller) on 127.0.0.1 with its data in `data_dir`.

    The storage is formatted on the first start only, so `restart()` keeps every record and
    committed offset. Topics are still auto-created on first use (the broker default,
    auto.create.topics.enable=true) with num.partitions=1; tests that care create them explicitly.
    Start it from a long-lived thread: on Linux the JVM is stopped when that thread ends.
    """

    def __init__(self, data_dir: Path, *, version: str = KAFKA_VERSION, cache_dir: Path | None = None,
                 start_timeout: float = 90.0, sasl_ssl_user: tuple[str, str] | None = None,
                 acl_user: tuple[str, str] | None = None, mtls: bool = False) -> None:
        self.data_dir = Path(data_dir)
        #: (user, password) of a SASL_SSL listener (PLAIN over TLS, as managed clusters ask) beside the plain
        #: one, on `secure_port`, its certificate signed by a CA written to `ca_file`
        self.sasl_ssl_user = sasl_ssl_user
        #: (user, password) of a second user of that listener, allowed only what ACLs grant it: the broker then
        #: runs Kafka's StandardAuthorizer, with the plain listener's clients and `sasl_ssl_user` as super users
        self.acl_user = acl_user
        #: with `sasl_ssl_user`: an SSL listener on `mtls_port` too, which asks every client for a certificate
        #: signed by the same CA (`issue_client_certificate`), its principal User:CN=<the certificate's CN>
        self.mtls = mtls
        self.secure_port = free_port()
        self.mtls_port = free_port()
        self.ca_file = self.data_dir / "tls" / "ca.pem"
        self.version = version
        self.cache_dir = cache_dir
        self.start_timeout = start_timeout
        self.port = free_port()
        self.controller_port = free_port()
        self.log_path = self.data_dir / "broker.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._classpath: str | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The broker as the project's Settings.kafka_url wants it."""
        return f"kafka://{self.bootstrap}"

    def _write_config(self) -> Path:
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft-logs"),
            "num.partitions": "1",  # for auto-created topics (auto.create.topics.enable stays at its default, true)
            # One replica of every internal topic (a single node), and one partition: they appear fast and
            # one probe group tells when the group coordinator has loaded (see _ready).
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(16 * 1024 * 1024),
        }
        if self.sasl_ssl_user is not None:
            properties.update(self._sasl_ssl_properties(listeners, *self.sasl_ssl_user))
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return path

    def _sasl_ssl_properties(self, listeners: str, user: str, password: str) -> dict[str, str]:
        """A SASL_SSL listener: PLAIN users from the JAAS line, a PEM key store (key and certificate for
        127.0.0.1, signed by a CA made here with the openssl command)."""
        keystore = _broker_certificate(self.data_dir / "tls")
        secure = f"SASL_SSL://127.0.0.1:{self.secure_port}"
        accounts = [(user, password), *([self.acl_user] if self.acl_user else [])]
        users = " ".join(f'user_{name}="{secret}"' for name, secret in accounts)
        jaas = (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{user}" '
                f'password="{password}" {users};')
        authorizer = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                      "super.users": f"User:ANONYMOUS;User:{user};User:CN={MTLS_CLIENT}"} if self.acl_user else {}
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
        mtls: dict[str, str] = {}
        if self.mtls:
            secure += f",SSL://127.0.0.1:{self.mtls_port}"
            protocols += ",SSL:SSL"
            mtls = {"listener.name.ssl.ssl.client.auth": "required",
                    "listener.name.ssl.ssl.truststore.type": "PEM",
                    "listener.name.ssl.ssl.truststore.location": str(self.ca_file)}
        return {**authorizer, **mtls, "listeners": f"{listeners},{secure}",
                "advertised.listeners": f"{listeners},{secure}",
                "listener.security.protocol.map": protocols,
                "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(keystore)}

    def issue_client_certificate(self, cert_file: Path, key_file: Path, not_after: datetime) -> None:
        """A client certificate for the mTLS listener (CN MTLS_CLIENT), signed by the broker's CA and valid until
        `not_after`, written over `cert_file` and `key_file` as a renewal replaces them (each swapped in whole).
        Needs `cryptography` (the test extra's)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.x509.oid import NameOID

        directory = self.ca_file.parent
        ca = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)  # `_broker_certificate` makes it with openssl's rsa:2048
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MTLS_CLIENT)]))
                       .issuer_name(ca.subject).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(datetime.now(UTC) - timedelta(minutes=5)).not_valid_after(not_after)
                       .sign(ca_key, hashes.SHA256()))
        for path, content in ((cert_file, certificate.public_bytes(serialization.Encoding.PEM)),
                              (key_file, key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))):
            path.with_name(f"{path.name}.new").write_bytes(content)
            os.replace(path.with_name(f"{path.name}.new"), path)

    def _java(self, main: str, *args: str, heap: tuple[str, ...] = ()) -> list[str]:
        java = shutil.which("java") or "java"
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        return [java, *heap, "-Djava.awt.headless=true", log4j, "-cp", self._classpath or "", main, *args]

    def _format_once(self, config: Path) -> None:
        """`kafka-storage.sh format --standalone`: a one-voter dynamic quorum. Skipped once formatted."""
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        command = self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config),
                             "--standalone")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"kafka StorageTool format failed (exit {done.returncode}):\n"
                               f"{_tail(done.stdout + done.stderr)}")

    def _log_tail(self) -> str:
        """The broker log's first ERROR lines (the cause; the tail is mostly shutdown) and its tail."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        errors = [line for line in text.splitlines() if " ERROR " in line or " FATAL " in line][:5]
        return "\n".join([*errors, "...", _tail(text, 40)]) if errors else _tail(text, 60)

    def start(self) -> ApacheKafkaBroker:
        """Start the JVM and wait until it serves metadata and consumer groups; if not, RuntimeError with the log
        tail."""
        if self._process is not None and self._process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._classpath = self._classpath or broker_classpath(self.cache_dir, self.version)
        config = self._write_config()
        self._format_once(config)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._java("kafka.Kafka", str(config), heap=("-Xms256m", "-Xmx512m")),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"Apache Kafka {self.version} exited with {code} on start:\n{self._log_tail()}")
            if listening(self.port, timeout=0.5) and _ready(self.bootstrap):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Apache Kafka {self.version} did not answer on {self.bootstrap} within "
                           f"{self.start_timeout:.0f}s:\n{self._log_tail()}")

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown that flushes the logs), then SIGKILL after `grace` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def restart(self) -> ApacheKafkaBroker:
        """Stop and start again on the same ports and data dir: the records and offsets survive."""
        self.stop()
        return self.start()

    def __enter__(self) -> ApacheKafkaBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
