"""Mail: queued in the caller's transaction, sent by a job after the commit."""
import logging
import smtplib
from email.message import EmailMessage

from flask import current_app

from portal import jobs
from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import MailMessage

log = logging.getLogger("portal.mail")


def queue_mail(to, subject, text, html=None):
    message = MailMessage(to=to, subject=subject, text=text, html=html)
    db.session.add(message)
    db.session.flush()
    jobs.enqueue("notify.send_mail", message_id=message.id)
    return message


@jobs.job("notify.send_mail")
def send_mail(message_id):
    message = db.session.get(MailMessage, message_id)
    if message is None or message.status in ("sent", "logged"):
        return
    config = current_app.config
    message.attempts += 1
    if not config.get("MAIL_SERVER"):
        # Embedded mode: the console is the mail server.
        log.warning("MAIL to=%s subject=%s\n%s", message.to, message.subject, message.text)
        message.status, message.sent_at = "logged", utcnow()
        return
    email = EmailMessage()
    email["From"] = config["MAIL_FROM"]
    email["To"] = message.to
    email["Subject"] = message.subject
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(email)
    message.status, message.sent_at = "sent", utcnow()
