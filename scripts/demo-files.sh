#!/usr/bin/env bash
# Files mode as the lab grades it: a generated site (a page, its CSS, a
# ~1 MB PNG whose name has a space), served by a model, fetched with curl,
# and, when chromium is installed, rendered to a screenshot.
#
#   scripts/demo-files.sh              (07-epoll; screenshot in ./files-demo.png)
#   scripts/demo-files.sh 01-blocking
set -euo pipefail
source "$(dirname "$0")/lib.sh"
MODEL=${1:-07-epoll}
SHOT=${SHOT:-$PWD/files-demo.png}
need_tool curl curl
need_tool python3 python3
build_models

SITE="$SCRATCH/site"
mkdir -p "$SITE/img"
cat >"$SITE/index.html" <<'HTML'
<!doctype html>
<html><head><title>files mode</title><link rel="stylesheet" href="style.css"></head>
<body><h1>Served in files mode</h1>
<p>The CSS makes this heading red and the page pale yellow; the noise below is a 770 KB PNG.</p>
<img src="img/noise%20512.png" width="512" height="512"></body></html>
HTML
echo 'body { background: #ffd; font-family: sans-serif; } h1 { color: #c00; }
img { border: 4px solid #00c; }' >"$SITE/style.css"
# A PNG of random pixels: it does not compress, so it stays ~770 KB.
python3 - "$SITE/img/noise 512.png" <<'PY'
import os, struct, sys, zlib
size = 512
rows = b"".join(b"\0" + os.urandom(size * 3) for _ in range(size))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
with open(sys.argv[1], "wb") as png:
    png.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY

start_model "$MODEL" --mode files --root "$SITE"
base="http://$MODEL_ADDR"
for path in / /style.css '/img/noise%20512.png' /missing /img/ '/%2e%2e/etc/passwd'; do
    curl -s --path-as-is -o /dev/null -w "%{http_code} %{content_type} %{size_download} bytes  $path\n" "$base$path"
done
cmp <(curl -s "$base/img/noise%20512.png") "$SITE/img/noise 512.png" && echo "the PNG arrives byte for byte"

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "no chromium: open $base/ in a browser (sudo apt-get install chromium for a screenshot)"
    exit 0
fi
"$browser" --headless --no-sandbox --disable-gpu --window-size=900,700 \
    --screenshot="$SHOT" "$base/" 2>/dev/null
echo "screenshot: $SHOT"
