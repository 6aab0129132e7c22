"""Data-subject rights requests: intake, verification, deadlines, execution across stores, holds and evidence."""
