"""The policy page: the version in force, scheduled and pending changes (approve or reject
by a second administrator), the history, and the edit form. The effective-from time is
typed in clinic time and stored in UTC."""

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from portal.db import utcnow
from portal.domain.policy_data import second_admin_decides, to_data
from portal.domain.states import ApprovalStatus
from portal.domain.timezone import CLINIC_TZ
from portal.policies import describe, queries, store
from portal.policies import service as policy_service
from portal.web.admin import bp
from portal.web.errors import apply_errors
from portal.web.forms.policy import (
    PolicyForm,
    changes_from,
    field_name,
    form_for,
    hints,
    sections,
)
from portal.web.forms.refunds import NoteForm
from portal.web.htmx import render
from portal.web.paging import page_args

PAGE = "admin/policy/index.html"
VERSION = "admin/policy/version.html"


def _rows(changes):
    """A version's changes (``queries.changes``) as (label, before, after) texts."""
    rows = []
    for path, (old, new) in changes.items():
        label, old_text = describe.shown(path, old)
        rows.append((label, old_text, describe.shown(path, new)[1]))
    return rows


def _diff(version):
    """What this version changed from the one before it (by effective time)."""
    return _rows(queries.changes(version))


def _hints(base):
    """The form's hints (``forms.policy.hints``), with what a year typed in "TDS from
    financial year" does and the earlier years' rules (``describe.tds_from_hint``)."""
    out = hints()
    tds = field_name("tds_rules.0.from_fy")
    out[tds] = " ".join(filter(None, (describe.tds_from_hint(base), out.get(tds))))
    return out


def _page(form, status=200):
    now = utcnow()
    version_id, _ = store.in_force(now)
    _base_id, base = policy_service.editing_start(now)
    pending = queries.pending_page(**page_args(20, prefix="pending_"))
    return render(
        PAGE,
        status=status,
        form=form,
        current=queries.version(version_id) if version_id else None,
        scheduled=queries.scheduled(now),
        withdrawable=queries.withdrawable(now),
        pending=pending,
        # The versions before them in one statement, however many wait.
        diffs={i: _rows(c) for i, c in queries.changes_of(pending.items).items()},
        history=queries.history_page(**page_args(20)),
        sections=sections(),
        hints=_hints(base),
        note=NoteForm(),
    )


@bp.get("/policy")
def policy_page():
    version_id, base = policy_service.editing_start()
    return _page(form_for(to_data(base), version_id))


@bp.post("/policy")
def policy_edit():
    form = PolicyForm()
    if not form.validate():
        return _page(form, 422)
    changes, errors = changes_from(form)
    if errors:
        apply_errors(form, errors)
        return _page(form, 422)
    effective = form.effective_from.data
    if effective is not None:
        effective = effective.replace(tzinfo=CLINIC_TZ)
    try:
        version = policy_service.propose(
            current_user,
            changes,
            effective_from=effective,
            reason=form.reason.data,
            base_version=form.base_version_id(),
        )
    except policy_service.PolicyError as exc:
        apply_errors(form, {_form_key(k): v for k, v in exc.errors.items()})
        return _page(form, 422)
    if version.needs_approval:
        decided_by_two = [
            describe.short_label(path)
            for path in queries.changes(version)
            if second_admin_decides(path)
        ]
        flash(
            f"Policy version {version.id} saved; a second administrator must approve it "
            f"before it applies (it changes {', '.join(decided_by_two)}).",
            "success",
        )
    else:
        flash(f"Policy version {version.id} saved.", "success")
    return redirect(url_for("admin.policy_page"), 303)


def _form_key(key):
    if key in ("effective_from", "reason"):
        return key
    name = field_name(key)
    return name if name in {field_name(p) for _, p, _, _ in describe.SPEC} else "__all__"


@bp.get("/policy/<int:version_id>")
def policy_version(version_id):
    version = queries.version(version_id)
    if version is None:
        abort(404)
    can_decide = (
        version.status == ApprovalStatus.PENDING and version.created_by_id != current_user.id
    )
    return render(
        VERSION,
        version=version,
        values=describe.value_rows(version.values),
        diff=_diff(version),
        can_decide=can_decide,
        can_withdraw=queries.withdrawable(utcnow()) == version.id,
        withdrawal=queries.withdrawal(version),
        note=NoteForm(),
    )


def _decide(action, version_id, done):
    form = NoteForm()
    if not form.validate():
        flash("The note is too long.", "error")
        return redirect(url_for("admin.policy_page"), 303)
    try:
        action(current_user, version_id, form.note.data)
    except policy_service.PolicyPermissionDenied as exc:
        flash(str(exc), "error")
    except policy_service.PolicyError as exc:
        if policy_service.MSG_NOT_FOUND in exc.errors.values():
            abort(404)
        flash(" ".join(exc.errors.values()), "error")
    else:
        flash(done, "success")
    return redirect(url_for("admin.policy_page"), 303)


@bp.post("/policy/<int:version_id>/approve")
def policy_approve(version_id):
    return _decide(policy_service.approve, version_id, "Policy change approved.")


@bp.post("/policy/<int:version_id>/reject")
def policy_reject(version_id):
    return _decide(policy_service.reject, version_id, "Policy change rejected.")


@bp.post("/policy/<int:version_id>/withdraw")
def policy_withdraw(version_id):
    return _decide(
        policy_service.withdraw,
        version_id,
        f"Policy version {version_id} withdrawn: it will not take effect.",
    )
