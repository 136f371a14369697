"""Public pages, kept thin: parse the request, call one service, render.

No page needs JavaScript. Links from mails only ever change something on
POST: a GET (a mail scanner following a link) shows a page with a button.
"""

from __future__ import annotations

import json
import logging

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from redis.exceptions import RedisError

from newsletter import conf, tokens
from newsletter.exceptions import InvalidAddress, InvalidInput, SignupRateLimited
from newsletter.forms import PreferencesForm, SignupForm
from newsletter.models import ConsentRecord, MailingList, Subscriber
from newsletter.selectors import public_list_by_slug
from newsletter.services import (
    Client,
    ConfirmOutcome,
    consent_text_current,
    consent_text_for,
    privacy_link_send,
    subscriber_erase,
    subscriber_export_data,
    subscriber_preferences_update,
    subscription_confirm,
    subscription_request,
    subscription_unsubscribe,
)
from newsletter.services.consent import client_ip as valid_ip
from newsletter.services.privacy import lists_for_preferences, lists_to_sign_up
from newsletter.services.subscriptions import subscription_for_token

Source = ConsentRecord.Source
logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address our trusted proxies saw (SIGNUP_TRUSTED_PROXIES)."""
    hops = conf.SIGNUP_TRUSTED_PROXIES
    if hops:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if p.strip()]
        if len(forwarded) >= hops and valid_ip(forwarded[-hops]):
            return valid_ip(forwarded[-hops])
    return valid_ip(request.META.get("REMOTE_ADDR"))


def _client(request: HttpRequest, source: str) -> Client:
    return Client(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", ""),
                  source=source)


def _link_problem(request: HttpRequest, problem: str, status: int) -> HttpResponse:
    return render(request, "newsletter/link_problem.html", {"problem": problem}, status=status)


def _read(reader, token: str):
    """(id, None) or (None, error response) for a token from a link."""
    try:
        return reader(token), None
    except tokens.TokenExpired:
        return None, "expired"
    except tokens.TokenInvalid:
        return None, "invalid"


def _token_error(request: HttpRequest, problem: str) -> HttpResponse:
    return _link_problem(request, problem, 410 if problem == "expired" else 400)


# --- signup ----------------------------------------------------------------------

def _public_list(slug: str) -> MailingList:
    mailing_list = public_list_by_slug(slug)
    if mailing_list is None:
        raise Http404(_("No such list."))
    return mailing_list


def _signup_submit(request: HttpRequest, mailing_list: MailingList, source: str):
    """Run the signup; a redirect to "check your inbox", or the form with errors."""
    form = SignupForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            subscription_request(
                mailing_list=mailing_list, email=data["email"], name=data["name"],
                consent_text_id=data.get("consent_version"),
                client=_client(request, source), honeypot=data["website"],
            )
        except SignupRateLimited:
            return render(request, "newsletter/rate_limited.html",
                          {"mailing_list": mailing_list}, status=429)
        except RedisError:  # limits and the signup queue live in Redis
            logger.exception("newsletter.signup.redis_unavailable")
            return render(request, "newsletter/unavailable.html",
                          {"mailing_list": mailing_list}, status=503)
        except (InvalidAddress, InvalidInput) as exc:
            form.add_error("email" if isinstance(exc, InvalidAddress) else "name", str(exc))
        else:
            return redirect("newsletter:check-inbox", slug=mailing_list.slug)
    return form


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest, slug: str) -> HttpResponse:
    mailing_list = _public_list(slug)
    if request.method == "POST":
        result = _signup_submit(request, mailing_list, Source.FORM)
        if isinstance(result, HttpResponse):
            return result
        form, status = result, 400
    else:
        form, status = None, 200
    consent = consent_text_current(mailing_list)  # only when the form is shown
    form = form or SignupForm(initial={"consent_version": consent.id})
    return render(request, "newsletter/signup.html",
                  {"mailing_list": mailing_list, "form": form, "consent": consent},
                  status=status)


@csrf_exempt
@require_POST
def signup_embedded(request: HttpRequest, slug: str) -> HttpResponse:
    """Target of the form snippet embedded on other sites (which cannot hold our CSRF token).

    The same limits, honeypot and double opt-in apply; errors show our own page.
    """
    mailing_list = _public_list(slug)
    result = _signup_submit(request, mailing_list, Source.EMBED)
    if isinstance(result, HttpResponse):
        return result
    return render(request, "newsletter/signup.html",
                  {"mailing_list": mailing_list, "form": result,
                   "consent": consent_text_current(mailing_list)}, status=400)


def check_inbox(request: HttpRequest, slug: str) -> HttpResponse:
    mailing_list = _public_list(slug)
    return render(request, "newsletter/check_inbox.html", {"mailing_list": mailing_list,
                                                           "valid_days":
                                                           conf.CONFIRM_LINK_MAX_AGE_DAYS})


# --- confirm -------------------------------------------------------------------

@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    subscription_id, problem = _read(tokens.confirm_token_read, token)
    if problem:
        return _token_error(request, problem)
    subscription = subscription_for_token(subscription_id)
    if subscription is None:
        return _link_problem(request, "gone", 404)
    mailing_list = subscription.mailing_list
    if request.method == "GET":
        return render(request, "newsletter/confirm.html", {
            "subscription": subscription, "consent": consent_text_current(mailing_list)})
    outcome = subscription_confirm(
        subscription_id=subscription_id, client=_client(request, Source.EMAIL_LINK),
        consent_text=consent_text_for(mailing_list, request.POST.get("consent_version")))
    if outcome in (ConfirmOutcome.CONFIRMED, ConfirmOutcome.ALREADY_CONFIRMED):
        return render(request, "newsletter/confirmed.html", {
            "subscription": subscription, "outcome": outcome.value,
            "preferences_token": tokens.preferences_token(subscription.subscriber_id)})
    return render(request, "newsletter/not_confirmed.html",
                  {"subscription": subscription, "outcome": outcome.value}, status=409)


# --- unsubscribe ---------------------------------------------------------------

@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscription_id, problem = _read(tokens.unsubscribe_token_read, token)
    if problem:
        return _token_error(request, problem)
    subscription = subscription_for_token(subscription_id)
    if subscription is None:  # erased or purged: nothing left to send to
        return render(request, "newsletter/unsubscribed.html", {"subscription": None})
    if request.method == "GET":
        return render(request, "newsletter/unsubscribe.html", {"subscription": subscription})
    subscription_unsubscribe(subscription_id=subscription_id,
                             client=_client(request, Source.EMAIL_LINK))
    return render(request, "newsletter/unsubscribed.html", {
        "subscription": subscription,
        "preferences_token": tokens.preferences_token(subscription.subscriber_id)})


@csrf_exempt
@never_cache
def one_click(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058: POST with ``List-Unsubscribe=One-Click``, no cookies, no CSRF token."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if request.POST.get("List-Unsubscribe") != "One-Click":
        return HttpResponse("expected List-Unsubscribe=One-Click\n", status=400,
                            content_type="text/plain; charset=utf-8")
    subscription_id, problem = _read(tokens.unsubscribe_token_read, token)
    if problem:
        return HttpResponse(f"{problem} link\n", status=400,
                            content_type="text/plain; charset=utf-8")
    subscription_unsubscribe(subscription_id=subscription_id,
                             client=_client(request, Source.ONE_CLICK))
    return HttpResponse("unsubscribed\n", content_type="text/plain; charset=utf-8")


# --- preferences ---------------------------------------------------------------

def _subscriber_for(request: HttpRequest, token: str, reader=tokens.preferences_token_read):
    subscriber_id, problem = _read(reader, token)
    if problem:
        return None, _token_error(request, problem)
    subscriber = Subscriber.objects.filter(id=subscriber_id).first()
    if subscriber is None:
        return None, _link_problem(request, "gone", 404)
    return subscriber, None


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """Name and the lists the person was on; other public lists link to their signup."""
    subscriber, error = _subscriber_for(request, token)
    if error:
        return error
    rows = lists_for_preferences(subscriber)
    choices = [(ml.id, ml.name) for ml, _sub in rows]
    subscribed = [ml.id for ml, sub in rows if sub.status == "confirmed"]
    saved = False
    if request.method == "POST":
        form = PreferencesForm(request.POST, list_choices=choices)
        if form.is_valid():
            subscriber_preferences_update(
                subscriber_id=subscriber.id, name=form.cleaned_data["name"],
                list_ids=set(form.cleaned_data["lists"]),
                client=_client(request, Source.PREFERENCES))
            return redirect(reverse("newsletter:preferences", args=[token]) + "?saved=1")
    else:
        saved = request.GET.get("saved") == "1"
        form = PreferencesForm(initial={"name": subscriber.name, "lists": subscribed},
                               list_choices=choices)
    return render(request, "newsletter/preferences.html", {
        "subscriber": subscriber, "form": form, "token": token, "saved": saved,
        "rows": rows, "other_lists": lists_to_sign_up(subscriber)},
        status=400 if form.errors else 200)


@never_cache
@require_POST
def privacy_request(request: HttpRequest, token: str) -> HttpResponse:
    """Export and erase need a fresh link: mail one to the subscriber's address."""
    subscriber, error = _subscriber_for(request, token)
    if error:
        return error
    action = request.POST.get("action")
    if action not in tokens.PRIVACY_ACTIONS:
        return _link_problem(request, "invalid", 400)
    privacy_link_send(subscriber_id=subscriber.id, action=action)  # same page if limited
    return render(request, "newsletter/privacy_link_sent.html", {
        "token": token, "valid_minutes": conf.PRIVACY_LINK_MAX_AGE_MINUTES})


def _privacy_reader(action: str):
    return lambda token: tokens.privacy_token_read(token, action)


@never_cache
@require_http_methods(["GET", "POST"])
def privacy_export(request: HttpRequest, token: str) -> HttpResponse:
    subscriber, error = _subscriber_for(request, token, _privacy_reader("export"))
    if error:
        return error
    if request.method == "GET":  # a mail scanner following the link downloads nothing
        return render(request, "newsletter/export.html", {"subscriber": subscriber})
    data = subscriber_export_data(subscriber_id=subscriber.id)
    response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-newsletter-data.json"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def privacy_erase(request: HttpRequest, token: str) -> HttpResponse:
    subscriber, error = _subscriber_for(request, token, _privacy_reader("erase"))
    if error:
        return error
    if request.method == "GET":
        return render(request, "newsletter/erase.html", {"subscriber": subscriber})
    if request.POST.get("confirm") != "yes":
        raise Http404(_("Nothing to do."))
    subscriber_erase(subscriber_id=subscriber.id, client=_client(request, Source.PREFERENCES))
    return render(request, "newsletter/erased.html", {})
