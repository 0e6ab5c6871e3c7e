"""A minimal ByteNite app: greet whoever APP_PARAMS names, once per task.

ByteNite runs this file inside the container named in manifest.json and
passes the job's parameters in APP_PARAMS (JSON). Whatever the script
writes to TASK_RESULTS_DIR becomes the task's result.
"""

import json
import os
import sys


def main() -> int:
    params = json.loads(os.getenv("APP_PARAMS") or "{}")
    name = params.get("name", "world")
    greeting = f"Hello, {name}! (from pushfs)\n"

    results = os.getenv("TASK_RESULTS_DIR")
    if results:
        with open(os.path.join(results, "greeting.txt"), "w", encoding="utf-8") as out:
            out.write(greeting)
    else:
        # Run by hand outside ByteNite: just print it.
        sys.stdout.write(greeting)
    return 0


if __name__ == "__main__":
    sys.exit(main())
