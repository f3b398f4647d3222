"""Docker HEALTHCHECK for the web container: exit 0 only when /health/ answers 200.

Plain standard library, so the probe needs no curl in the image; /health/ is answered
before the HTTPS redirect and the host check (portal.health.HealthCheckMiddleware).
"""

import sys
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:8000/health/", timeout=8) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(f"health check failed: {error}", file=sys.stderr)
    sys.exit(1)
