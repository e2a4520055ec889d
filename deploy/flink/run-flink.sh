#!/bin/sh
# One `newswatch run` on an Apache Flink cluster (Beam's portable FlinkRunner).
#
# Run it from the worker image, so the launcher's Beam and Python match the workers':
#   docker run --rm -v "$PWD/deploy/flink:/deploy:ro" \
#     -e FLINK_MASTER=flink-jobmanager:8081 \
#     -e WORKER_IMAGE=registry.example.com/newswatch-beam-worker:0.1.0 \
#     --entrypoint /bin/sh registry.example.com/newswatch-beam-worker:0.1.0 /deploy/run-flink.sh
#
# FLINK_MASTER   the JobManager's REST endpoint, host:port (required)
# WORKER_IMAGE   the image built from deploy/flink/Dockerfile, pullable by every
#                TaskManager (required with ENVIRONMENT_TYPE=DOCKER)
# ENVIRONMENT_TYPE  DOCKER (TaskManagers start SDK containers; they need a Docker daemon)
#                or EXTERNAL (an SDK worker pool beside each TaskManager, see README)
# PARALLELISM    Flink parallelism (default 4); NEWSWATCH_CONFIG  config path
# Further arguments go to `newswatch run` (Beam options such as --flink_job_server_jar).
#
# Exit codes are newswatch's: 0 ok, 2 config, 3 all sources failed, 4 run failed,
# 75 another run holds the lock.
set -eu
: "${FLINK_MASTER:?set FLINK_MASTER to the JobManager REST endpoint, host:port}"
ENVIRONMENT_TYPE="${ENVIRONMENT_TYPE:-DOCKER}"
if [ "$ENVIRONMENT_TYPE" = "EXTERNAL" ]; then
  ENVIRONMENT_CONFIG="${ENVIRONMENT_CONFIG:-localhost:50000}"
else
  ENVIRONMENT_CONFIG="${WORKER_IMAGE:?set WORKER_IMAGE to the worker image}"
fi

exec newswatch run \
  --config "${NEWSWATCH_CONFIG:-/deploy/config.yaml}" \
  --log-format json \
  --runner=FlinkRunner \
  --flink_master="$FLINK_MASTER" \
  --flink_version=1.20 \
  --flink_submit_uber_jar \
  --parallelism="${PARALLELISM:-4}" \
  --environment_type="$ENVIRONMENT_TYPE" \
  --environment_config="$ENVIRONMENT_CONFIG" \
  "$@"
