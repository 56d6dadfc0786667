"""store/migrations_sql.c must be the embedding of store/migrations/*.sql."""
import os
import subprocess
import sys
import unittest

SRC = os.environ.get("S3G_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


class EmbedTest(unittest.TestCase):
    def test_generated_file_is_current(self):
        r = subprocess.run([sys.executable, os.path.join(SRC, "store", "migrations", "embed.py"), "--check"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
