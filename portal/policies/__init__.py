"""Policy as versioned data: POLICY.md's numbers in rows with an effective-from time.

``models`` (the rows and the change stamp), ``store`` (the version in force, cached per
process and re-checked with one primary-key read per request or job), ``service`` (propose,
approve, reject: audited; changes to money or a control need a second administrator),
``queries`` (what the admin page lists, and the pending changes an approvals queue can
show), ``describe`` (each value's label and unit, and a version's change in one line)."""
