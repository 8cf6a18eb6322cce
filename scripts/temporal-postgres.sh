#!/usr/bin/env bash
# A production Temporal for HA-OSCAR's witness: the Temporal server (v1.29.1) on PostgreSQL,
# as several server processes of ONE cluster (each with its own ports and membership) on the
# same database, so that losing one Temporal process does not stop the cluster. Used by
# administrators (docs/deploy.md) and by the lab tests (test/lab/temporal-pg-*.test.ts).
#
# It surviving a Temporal process is tested; surviving the loss of PostgreSQL is not what this
# gives: for that, use PostgreSQL's own replication (a streaming standby) under the database.
#
#   scripts/temporal-postgres.sh create-role [options]   role + password file on a LOCAL PostgreSQL (as the postgres OS user)
#   scripts/temporal-postgres.sh init  [options]         databases, schemas (SQL tool), server configuration in --dir
#   scripts/temporal-postgres.sh start [--dir DIR]       start every process, wait, register the namespace and search attributes
#   scripts/temporal-postgres.sh run N [--dir DIR]       run process N in the foreground (for a systemd unit)
#   scripts/temporal-postgres.sh stop [N] [--dir DIR]    stop every process (or process N): SIGTERM, SIGKILL after 20 s
#   scripts/temporal-postgres.sh status [--dir DIR]      which processes run, their frontends
#   scripts/temporal-postgres.sh drop --yes [options]    drop the databases (and --drop-role the role): everything is lost
#
# Run with --help for the options. Every failure says what is missing and exits non-zero;
# nothing is started unless everything it needs is there.
set -euo pipefail

TEMPORAL_SERVER_VERSION=v1.29.1
# HA-OSCAR's search attributes (src/temporal/search-attributes.ts; a unit test keeps them equal).
SEARCH_ATTRIBUTES=(HaCluster=Keyword HaNode=Keyword HaGroup=Keyword HaResource=Keyword HaOperation=Keyword HaTrigger=Keyword HaOutcome=Keyword)
# How long Temporal keeps a closed workflow's history (the postmortem): HISTORY_RETENTION_DAYS
# in src/temporal/dev-server.ts.
RETENTION=720h
# Port layout of process N (1-based), from base B = --port + 100*(N-1): frontend gRPC B,
# history B+1, matching B+2, worker B+6, frontend HTTP B+10, membership B+20, +21, +22, +26,
# Prometheus metrics B+40. With the default --port 7233: frontends on 7233 and 7333.
PROCESS_STRIDE=100
PORT_OFFSETS=(0 1 2 6 10 20 21 22 26 40)

cache_bin="${XDG_CACHE_HOME:-$HOME/.cache}/haoscar/bin"

die() {
  printf 'temporal-postgres: %s\n' "$*" >&2
  exit 1
}
say() { printf 'temporal-postgres: %s\n' "$*" >&2; }

usage() {
  cat <<'EOF'
Usage: scripts/temporal-postgres.sh COMMAND [N] [options]

Commands: create-role, init, start, run N, stop [N], status, drop --yes

Options (init and create-role; start/stop/status/run read what init recorded in --dir):
  --dir DIR              state, configuration, logs and pid files (default /var/lib/haoscar/temporal-pg)
  --pg-host HOST         PostgreSQL host (default 127.0.0.1)
  --pg-port PORT         PostgreSQL port (default 5432)
  --pg-user USER         role Temporal connects as (default temporal)
  --pg-password-file F   file holding its password (default DIR/pg-password; create-role writes it)
  --db NAME              Temporal's database; visibility goes in NAME_visibility (default temporal)
  --ip IP                address the servers listen on (default 127.0.0.1; 0.0.0.0 needs --broadcast)
  --broadcast IP         address the processes give each other (default: --ip)
  --port PORT            first frontend's gRPC port (default 7233); process N uses PORT+100*(N-1)
  --processes N          server processes (default 2)
  --namespace NS         namespace to create (default default), histories kept 30 days
  --server BIN           Temporal server binary (default $TEMPORAL_SERVER, PATH, ~/.cache/haoscar/bin/server)
  --sql-tool BIN         temporal-sql-tool (default $TEMPORAL_SQL_TOOL, PATH, ~/.cache/haoscar/bin/temporal-sql-tool)
  --temporal-cli BIN     Temporal CLI, for the namespace and search attributes (default $TEMPORAL_CLI, PATH, cache)
  --ready-timeout SECS   how long start waits for every frontend (default 120)
  --drop-role            with drop: the role too

Build the binaries (Go >= 1.24):
  GOBIN=~/.cache/haoscar/bin go install go.temporal.io/server/cmd/server@v1.29.1
  GOBIN=/tmp/t go install go.temporal.io/server/cmd/tools/sql@v1.29.1 && mv /tmp/t/sql ~/.cache/haoscar/bin/temporal-sql-tool
EOF
}

# ------------------------------------------------------------------------------ arguments
cmd="${1:-}"
[ -n "$cmd" ] || { usage >&2; exit 2; }
shift
process_arg=""
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  process_arg="$1"
  shift
fi

DIR=/var/lib/haoscar/temporal-pg
declare -A opt=()
yes=false
drop_role=false
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --yes) yes=true; shift ;;
    --drop-role) drop_role=true; shift ;;
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; DIR="$2"; shift 2 ;;
    --pg-host | --pg-port | --pg-user | --pg-password-file | --db | --ip | --broadcast | --port | --processes | --namespace | --server | --sql-tool | --temporal-cli | --ready-timeout)
      [ $# -ge 2 ] || die "$1 needs a value"
      opt["${1#--}"]="$2"
      shift 2
      ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
SETTINGS="$DIR/settings.env"

# Settings: from the command line, else from what init recorded, else the defaults.
load_settings() {
  if [ -f "$SETTINGS" ]; then
    # shellcheck disable=SC1090
    . "$SETTINGS"
  fi
  PG_HOST="${opt[pg-host]:-${PG_HOST:-127.0.0.1}}"
  PG_PORT="${opt[pg-port]:-${PG_PORT:-5432}}"
  PG_USER="${opt[pg-user]:-${PG_USER:-temporal}}"
  PG_PASSWORD_FILE="${opt[pg-password-file]:-${PG_PASSWORD_FILE:-$DIR/pg-password}}"
  DB="${opt[db]:-${DB:-temporal}}"
  IP="${opt[ip]:-${IP:-127.0.0.1}}"
  BROADCAST="${opt[broadcast]:-${BROADCAST_SET:-}}"
  BROADCAST_SET="$BROADCAST"
  PORT="${opt[port]:-${PORT:-7233}}"
  PROCESSES="${opt[processes]:-${PROCESSES:-2}}"
  NAMESPACE="${opt[namespace]:-${NAMESPACE:-default}}"
  READY_TIMEOUT="${opt[ready-timeout]:-${READY_TIMEOUT:-120}}"
  SERVER_BIN="${opt[server]:-${SERVER_BIN:-}}"
  SQL_TOOL="${opt[sql-tool]:-${SQL_TOOL:-}}"
  TEMPORAL_CLI_BIN="${opt[temporal-cli]:-${TEMPORAL_CLI_BIN:-}}"
  [ -n "$BROADCAST" ] || BROADCAST="$IP"
  VIS_DB="${DB}_visibility"

  [[ "$PG_PORT" =~ ^[0-9]+$ ]] && [ "$PG_PORT" -ge 1 ] && [ "$PG_PORT" -le 65535 ] || die "--pg-port: expected a port 1-65535, got '$PG_PORT'"
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port: expected a port number, got '$PORT'"
  [[ "$PROCESSES" =~ ^[1-9]$ ]] || die "--processes: expected 1 to 9, got '$PROCESSES'"
  local last=$((PORT + PROCESS_STRIDE * (PROCESSES - 1) + 40))
  # Temporal keeps membership ports in a PostgreSQL smallint: the last one must be <= 32767.
  local last_membership=$((PORT + PROCESS_STRIDE * (PROCESSES - 1) + 26))
  [ "$PORT" -ge 1024 ] && [ "$last" -le 65535 ] && [ "$last_membership" -le 32767 ] \
    || die "--port $PORT: the processes' ports would run from $PORT to $last, membership ports up to $last_membership (Temporal stores them as a PostgreSQL smallint: at most 32767); choose a base from 1024 to $((32767 - PROCESS_STRIDE * (PROCESSES - 1) - 26))"
  [[ "$DB" =~ ^[a-z_][a-z0-9_]{0,50}$ ]] || die "--db: expected a database name of lowercase letters, digits and _, got '$DB'"
  [[ "$PG_USER" =~ ^[a-z_][a-z0-9_]{0,50}$ ]] || die "--pg-user: expected a role name of lowercase letters, digits and _, got '$PG_USER'"
  [[ "$NAMESPACE" =~ ^[A-Za-z0-9._-]+$ ]] || die "--namespace: expected letters, digits, '.', '_' or '-', got '$NAMESPACE'"
  [[ "$READY_TIMEOUT" =~ ^[0-9]+$ ]] || die "--ready-timeout: expected seconds, got '$READY_TIMEOUT'"
  [[ "$IP" =~ ^[0-9.]+$ ]] || die "--ip: expected an IPv4 address, got '$IP'"
  [ "$BROADCAST" != 0.0.0.0 ] || die "--ip 0.0.0.0: give --broadcast, the address the processes reach each other at (this machine's address)"
}

save_settings() {
  mkdir -p "$DIR"
  {
    echo "# Written by scripts/temporal-postgres.sh init; start, stop, status and run read it."
    local name
    for name in PG_HOST PG_PORT PG_USER PG_PASSWORD_FILE DB IP BROADCAST_SET PORT PROCESSES NAMESPACE READY_TIMEOUT SERVER_BIN SQL_TOOL TEMPORAL_CLI_BIN; do
      printf '%s=%q\n' "$name" "${!name}"
    done
  } >"$SETTINGS.tmp"
  mv "$SETTINGS.tmp" "$SETTINGS"
}

# A binary: the option, the environment variable, PATH, then HA-OSCAR's build cache.
find_bin() {
  local given="$1" env_value="$2" name="$3" cached="$4" what="$5" how="$6"
  if [ -n "$given" ]; then
    [ -x "$given" ] || die "$what: '$given' is not an executable file"
    echo "$given"
  elif [ -n "$env_value" ]; then
    [ -x "$env_value" ] || die "$what: '$env_value' (from the environment) is not an executable file"
    echo "$env_value"
  elif command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
  elif [ -x "$cache_bin/$cached" ]; then
    echo "$cache_bin/$cached"
  else
    die "no $what found (option, environment, PATH, $cache_bin/$cached); build it: $how"
  fi
}

server_bin() {
  SERVER_BIN="$(find_bin "$SERVER_BIN" "${TEMPORAL_SERVER:-}" temporal-server server "the Temporal server" \
    "GOBIN=$cache_bin go install go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION")"
}
sql_tool() {
  SQL_TOOL="$(find_bin "$SQL_TOOL" "${TEMPORAL_SQL_TOOL:-}" temporal-sql-tool temporal-sql-tool "temporal-sql-tool" \
    "GOBIN=/tmp/sqltool go install go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION && mv /tmp/sqltool/sql $cache_bin/temporal-sql-tool")"
}
temporal_cli() {
  TEMPORAL_CLI_BIN="$(find_bin "$TEMPORAL_CLI_BIN" "${TEMPORAL_CLI:-}" temporal temporal "the Temporal CLI" \
    "GOBIN=$cache_bin go install github.com/temporalio/cli/cmd/temporal@v1.5.1")"
}

password() {
  [ -r "$PG_PASSWORD_FILE" ] || die "cannot read the PostgreSQL password file '$PG_PASSWORD_FILE' (give --pg-password-file, or run create-role on the database machine)"
  local pw
  pw="$(head -n 1 "$PG_PASSWORD_FILE")"
  [ -n "$pw" ] || die "the PostgreSQL password file '$PG_PASSWORD_FILE' is empty"
  printf '%s' "$pw"
}

process_base() { echo $((PORT + PROCESS_STRIDE * ($1 - 1))); }
frontend() { echo "$BROADCAST:$(process_base "$1")"; }
frontends() {
  local n list=""
  for n in $(seq 1 "$PROCESSES"); do list="${list:+$list,}$(frontend "$n")"; done
  echo "$list"
}

# ------------------------------------------------------------------------------ create-role
# On the machine PostgreSQL runs on: a login role that may create databases, with a random
# password written to the password file (kept if it exists, so this is safe to rerun).
create_role() {
  load_settings
  command -v psql >/dev/null || die "psql not found: install PostgreSQL (apt-get install postgresql) on this machine, or create the role yourself: CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '...'"
  id postgres >/dev/null 2>&1 || die "no 'postgres' user on this machine: create-role works on a local PostgreSQL only (create the role yourself on a remote one)"
  [ "$(id -u)" -eq 0 ] || die "create-role runs psql as the postgres user: run it as root"
  runuser -u postgres -- psql -qAt -p "$PG_PORT" -c 'SELECT 1' >/dev/null 2>&1 \
    || die "PostgreSQL does not answer on this machine's socket, port $PG_PORT: start it (pg_ctlcluster 15 main start, or systemctl start postgresql)"
  if [ ! -s "$PG_PASSWORD_FILE" ]; then
    mkdir -p "$(dirname "$PG_PASSWORD_FILE")"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$PG_PASSWORD_FILE")
    say "wrote a new password to $PG_PASSWORD_FILE"
  fi
  local pw
  pw="$(password)"
  [[ "$pw" =~ ^[A-Za-z0-9._-]+$ ]] || die "the password in $PG_PASSWORD_FILE must be letters, digits, '.', '_' or '-' (it goes into SQL)"
  # DO block: create or alter, so a rerun converges on the file's password.
  runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -p "$PG_PORT" <<SQL >/dev/null
DO \$\$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    ALTER ROLE "$PG_USER" LOGIN CREATEDB PASSWORD '$pw';
  ELSE
    CREATE ROLE "$PG_USER" LOGIN CREATEDB PASSWORD '$pw';
  END IF;
END \$\$;
SQL
  save_settings
  say "role $PG_USER ready on port $PG_PORT (password in $PG_PASSWORD_FILE)"
}

# ------------------------------------------------------------------------------ init
sql() {
  local db="$1"
  shift
  local log="$DIR/sql-tool.log"
  if ! "$SQL_TOOL" --plugin postgres12 --ep "$PG_HOST" -p "$PG_PORT" -u "$PG_USER" --pw "$(password)" --db "$db" "$@" >>"$log" 2>&1; then
    local why
    # PostgreSQL's own words (pq: ...), else the tool's last error message.
    why="$(grep -o -e 'pq: .*' -e 'dial tcp [^"]*' "$log" | head -n 1 | sed -e "s/\\\\\"/'/g" -e 's/ pq: .*//' -e 's/[]"}].*//' || true)"
    [ -n "$why" ] || why="$(grep -o '"error": "[^"]*' "$log" | tail -n 1 | sed 's/"error": "//' || true)"
    die "the SQL tool failed: $* on database $db at $PG_HOST:$PG_PORT as $PG_USER (${why:-see $log}). Is PostgreSQL running there, does the role exist with the password in $PG_PASSWORD_FILE and may it create databases (create-role)? Full output: $log"
  fi
}

write_config() {
  local n="$1" base pw
  base="$(process_base "$n")"
  pw="$(password)"
  local p=()
  local o
  for o in "${PORT_OFFSETS[@]}"; do p+=($((base + o))); done
  local conf="$DIR/config-$n"
  mkdir -p "$conf"
  local datastore
  datastore() {
    cat <<EOF
    $1:
      sql:
        pluginName: postgres12
        databaseName: "$2"
        connectAddr: "$PG_HOST:$PG_PORT"
        connectProtocol: tcp
        user: "$PG_USER"
        password: "$pw"
        maxConns: $3
        maxIdleConns: $3
        maxConnLifetime: 1h
EOF
  }
  local service
  service() {
    cat <<EOF
  $1:
    rpc:
      grpcPort: $2
      membershipPort: $3
      bindOnIP: "$IP"
EOF
    [ -z "${4:-}" ] || echo "      httpPort: $4"
  }
  (
    umask 077
    {
      echo "# Temporal server process $n of $PROCESSES (scripts/temporal-postgres.sh init). Holds the database password."
      echo "log: { stdout: true, level: warn }"
      echo "persistence:"
      echo "  defaultStore: postgres-default"
      echo "  visibilityStore: postgres-visibility"
      echo "  numHistoryShards: 4"
      echo "  datastores:"
      datastore postgres-default "$DB" 20
      datastore postgres-visibility "$VIS_DB" 4
      echo "global:"
      echo "  membership: { maxJoinDuration: 30s, broadcastAddress: \"$BROADCAST\" }"
      echo "  pprof: { port: 0 }"
      echo "  metrics: { prometheus: { framework: tally, timerType: histogram, listenAddress: \"$IP:${p[9]}\" } }"
      echo "services:"
      service frontend "${p[0]}" "${p[5]}" "${p[4]}"
      service history "${p[1]}" "${p[6]}"
      service matching "${p[2]}" "${p[7]}"
      service worker "${p[3]}" "${p[8]}"
      cat <<EOF
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "$(frontend 1)"
dcRedirectionPolicy: { policy: noop }
dynamicConfigClient: { filepath: "$DIR/dynamicconfig.yaml", pollInterval: 10s }
EOF
    } >"$conf/production.yaml.tmp"
    mv "$conf/production.yaml.tmp" "$conf/production.yaml"
  )
}

init() {
  load_settings
  sql_tool
  server_bin
  temporal_cli
  mkdir -p "$DIR"
  password >/dev/null
  : >"$DIR/sql-tool.log"
  say "schemas: $DB and $VIS_DB on $PG_HOST:$PG_PORT as $PG_USER"
  local db schema
  for db in "$DB" "$VIS_DB"; do
    schema=postgresql/v12/temporal
    [ "$db" = "$DB" ] || schema=postgresql/v12/visibility
    # create-database fails on an existing database: ask PostgreSQL through the tool's own
    # connection instead by trying setup on it first (setup -v 0.0 is a no-op once versioned,
    # as in Temporal's own auto-setup image).
    if ! "$SQL_TOOL" --plugin postgres12 --ep "$PG_HOST" -p "$PG_PORT" -u "$PG_USER" --pw "$(password)" --db "$db" setup-schema -v 0.0 >>"$DIR/sql-tool.log" 2>&1; then
      sql "$db" create-database
      sql "$db" setup-schema -v 0.0
    fi
    sql "$db" update-schema -s "$schema"
  done
  # One partition per task queue, as on the embedded server (DEV_SERVER_DYNAMIC_CONFIG in
  # src/temporal/dev-server.ts): HA-OSCAR's per-node queues have a single poller each.
  cat >"$DIR/dynamicconfig.yaml" <<'EOF'
matching.numTaskqueueReadPartitions:
  - value: 1
matching.numTaskqueueWritePartitions:
  - value: 1
EOF
  local n
  for n in $(seq 1 "$PROCESSES"); do write_config "$n"; done
  save_settings
  say "configuration of $PROCESSES processes in $DIR (frontends $(frontends)); next: $0 start --dir $DIR"
}

# ------------------------------------------------------------------------------ start / run / stop
pid_of() {
  local f="$DIR/server-$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # A recycled pid is not ours: the process must be the server with our configuration.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "config-$1 " || return 1
  echo "$pid"
}

require_init() {
  load_settings
  [ -f "$SETTINGS" ] && [ -f "$DIR/config-1/production.yaml" ] || die "nothing set up in $DIR: run '$0 init --dir $DIR ...' first"
  server_bin
}

run_one() {
  local n="$1"
  require_init
  [ -f "$DIR/config-$n/production.yaml" ] || die "no process $n in $DIR (it has $PROCESSES)"
  cd "$DIR"
  exec "$SERVER_BIN" --root "$DIR" --config "config-$n" --env production --allow-no-auth start
}

start_one() {
  local n="$1" pid
  if pid="$(pid_of "$n")"; then
    say "process $n already runs (pid $pid)"
    return
  fi
  local log="$DIR/server-$n.log"
  echo "---- $(date -u +%FT%TZ) start" >>"$log"
  (cd "$DIR" && exec setsid "$SERVER_BIN" --root "$DIR" --config "config-$n" --env production --allow-no-auth start >>"$log" 2>&1 </dev/null) &
  echo $! >"$DIR/server-$n.pid"
  say "process $n started (pid $!, frontend $(frontend "$n"), log $log)"
}

tctl() { "$TEMPORAL_CLI_BIN" "$@" --address "$(frontend 1)" --command-timeout 10s; }

start_all() {
  require_init
  temporal_cli
  local n
  local deadline=$((SECONDS + READY_TIMEOUT))
  # One after the other: on fresh databases, processes started together race to write the
  # cluster metadata, and the loser exits (duplicate key on cluster_metadata_info_pkey).
  for n in $(seq 1 "$PROCESSES"); do
    start_one "$n"
    until "$TEMPORAL_CLI_BIN" operator cluster health --address "$(frontend "$n")" --command-timeout 3s >/dev/null 2>&1; do
      if ! pid_of "$n" >/dev/null; then
        die "process $n exited before it served; the end of its log ($DIR/server-$n.log):
$(tail -n 15 "$DIR/server-$n.log")"
      fi
      [ "$SECONDS" -lt "$deadline" ] || die "frontend $(frontend "$n") not serving within ${READY_TIMEOUT}s; see $DIR/server-$n.log"
      sleep 0.5
    done
  done
  # The namespace, then each missing search attribute (frontends may still be joining: retry).
  until tctl operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 \
    || tctl operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "could not create namespace $NAMESPACE within ${READY_TIMEOUT}s: $(tctl operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" 2>&1 | tail -n 2)"
    sleep 1
  done
  local sa name type have
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    name="${sa%%=*}"
    type="${sa#*=}"
    until have="$(tctl operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null)" && grep -qw "$name" <<<"$have" \
      || tctl operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type" >/dev/null 2>&1; do
      [ "$SECONDS" -lt "$deadline" ] || die "could not register search attribute $name within ${READY_TIMEOUT}s"
      sleep 1
    done
  done
  say "ready: namespace $NAMESPACE, search attributes registered; temporal.address: [$(frontends | sed 's/,/, /g')]"
  echo "$(frontends)"
}

stop_one() {
  local n="$1" pid i
  pid="$(pid_of "$n")" || { rm -f "$DIR/server-$n.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "process $n (pid $pid) ignored SIGTERM for 20 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/server-$n.pid"
  say "process $n stopped"
}

stop_all() {
  load_settings
  [ -f "$SETTINGS" ] || die "nothing set up in $DIR"
  if [ -n "$process_arg" ]; then
    stop_one "$process_arg"
  else
    local n
    for n in $(seq 1 "$PROCESSES"); do stop_one "$n"; done
  fi
}

status() {
  load_settings
  [ -f "$SETTINGS" ] || die "nothing set up in $DIR"
  local n pid running=0
  for n in $(seq 1 "$PROCESSES"); do
    if pid="$(pid_of "$n")"; then
      echo "process $n: running (pid $pid), frontend $(frontend "$n")"
      running=$((running + 1))
    else
      echo "process $n: stopped, frontend $(frontend "$n")"
    fi
  done
  echo "database $DB and $VIS_DB on $PG_HOST:$PG_PORT; temporal.address: [$(frontends | sed 's/,/, /g')]"
  [ "$running" -gt 0 ]
}

drop() {
  load_settings
  $yes || die "drop deletes databases $DB and $VIS_DB with every workflow history: add --yes"
  local n
  for n in $(seq 1 "$PROCESSES"); do [ -f "$SETTINGS" ] && stop_one "$n"; done
  command -v psql >/dev/null && id postgres >/dev/null 2>&1 || die "drop works on a local PostgreSQL (psql as the postgres user)"
  runuser -u postgres -- psql -q -p "$PG_PORT" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "DROP DATABASE IF EXISTS \"$VIS_DB\" WITH (FORCE)" >/dev/null
  if $drop_role; then runuser -u postgres -- psql -q -p "$PG_PORT" -c "DROP ROLE IF EXISTS \"$PG_USER\"" >/dev/null; fi
  say "dropped $DB and $VIS_DB$($drop_role && echo " and role $PG_USER")"
}

case "$cmd" in
  create-role) create_role ;;
  init) init ;;
  start) start_all ;;
  run) [ -n "$process_arg" ] || die "run needs a process number, e.g. run 1"; run_one "$process_arg" ;;
  stop) stop_all ;;
  status) status ;;
  drop) drop ;;
  -h | --help | help) usage ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
