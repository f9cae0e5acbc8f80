"""manage.py of the perfguard_django test project (run_e2e.sh runs migrate with it)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'testproject.settings')

if __name__ == '__main__':
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
