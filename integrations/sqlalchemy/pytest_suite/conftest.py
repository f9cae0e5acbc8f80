"""
conftest.py of the pytest suite that e2e_checks.py runs (some of its tests
fail on purpose): a Session fixture and perfguard_sqlalchemy's fixture, as
an application's test suite would have them.  The tables and rows are
e2e_checks.py's (10 authors, 30 posts).
"""
import os
import sys

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from perfguard_sqlalchemy import instrument, perfguard_test  # noqa: E402

engine = create_engine('postgresql+psycopg2://%s@/%s?host=%s&port=%s' % (
    os.environ['PGUSER'], os.environ['PGDATABASE'], os.environ['PGHOST'], os.environ['PGPORT']),
    future=True)
instrument(engine, framework='sqlalchemy')


@pytest.fixture
def session():
    with Session(engine) as s:
        yield s
        s.rollback()


# every test: N+1s collected, one failure at its end listing them all
perfguard = pytest.fixture(autouse=True)(perfguard_test)
