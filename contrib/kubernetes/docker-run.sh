#!/bin/sh
# docker-run.sh: the two container shapes with docker (podman takes the
# same flags). Not run by anything: lines to copy; tests/e2e/
# test_manifests.py checks that their paths, socket, port and gcmond's
# flags agree with the Kubernetes manifests beside it and with gcmond.
# gcmon:0.3.0 is an image with the gcmon wheel installed (README,
# "Containers"); web:1.0 is your service's, with the wheel too.
set -eu

# The node's gcmond: the host's PID namespace (--pid=host), so it sees
# every container's processes; their area files in /run/gcmon.
docker run -d --name gcmond --pid=host --cap-add SYS_PTRACE \
	-v /run/gcmon:/run/gcmon -p 127.0.0.1:9464:9464 \
	gcmon:0.3.0 gcmond --socket /run/gcmon/gcmon.sock \
	--socket-group 1000 --allow-group 1000 --metrics-listen 0.0.0.0:9464
docker run -d --name web --user 1000:1000 -v /run/gcmon:/run/gcmon \
	-e GCMON_SOCKET=/run/gcmon/gcmon.sock -e GCMON_SERVICE=web \
	web:1.0 gunicorn --workers 4 --bind 0.0.0.0:8000 app:app

# A sidecar gcmond: only a volume shared, PID namespaces apart (gcmond
# counts every collection, reads no /proc figure of the service, and
# serves it by its uid: no /proc to read its groups from).
docker volume create gcmon-run
docker run -d --name web-gcmond -v gcmon-run:/run/gcmon \
	-p 127.0.0.1:9465:9464 \
	gcmon:0.3.0 gcmond --socket /run/gcmon/gcmon.sock \
	--socket-group 1000 --allow-uid 1000 --metrics-listen 0.0.0.0:9464
docker run -d --name web2 --user 1000:1000 -v gcmon-run:/run/gcmon \
	-e GCMON_SOCKET=/run/gcmon/gcmon.sock \
	web:1.0 gunicorn --workers 4 --bind 0.0.0.0:8000 app:app
