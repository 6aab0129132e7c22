"""platform scopes: keys holding retention:manage now hold platform:retention

Retention spans every app's data, so it needs a company-wide scope that no app's `admin` implies. A key that was
given retention:manage explicitly was made for retention work and keeps it under the new name; an app's `admin`
key, which reached retention only through `admin`, no longer does. The store registry and the data map now need
platform:read, which no existing key is given here: an operator grants it deliberately.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

KEYS = sa.table('api_keys', sa.column('id', sa.Integer), sa.column('scopes', sa.String))


def _rename(old: str, new: str) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(KEYS.c.id, KEYS.c.scopes)).all():
        scopes = row.scopes.split(',')
        if old in scopes:
            text = ','.join(sorted({new if s == old else s for s in scopes}))
            conn.execute(sa.update(KEYS).where(KEYS.c.id == row.id).values(scopes=text))


def upgrade() -> None:
    _rename('retention:manage', 'platform:retention')


def downgrade() -> None:
    # platform:read stays where it was granted: the code before this revision requires it nowhere.
    _rename('platform:retention', 'retention:manage')
