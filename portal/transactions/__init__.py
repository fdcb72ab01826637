"""The transactions console's read model: one row per money movement (``money_movements``),
kept in step with the records it describes in the same transaction (``projection``)."""
