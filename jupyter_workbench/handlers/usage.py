"""Usage and quotas: your own view, and the administrators' reports (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..core import quotas, usage, validation
from ..core.context import Ctx
from . import hub_schemas as H
from .base import Param, WorkbenchHandler, attachment, endpoint, page_json
from .schemas import paging

WINDOW = (
    Param("from", H.time_param_schema(), "Start (default: the first of this month, UTC)."),
    Param("to", H.time_param_schema(), "End (default: now)."),
)


def parse_time(name: str, raw: str | None) -> datetime | None:
    return None if raw is None else validation.parse_time(raw, name)


def csv_text(value: str) -> str:
    """A name as a spreadsheet cell: one a spreadsheet would run as a formula (a user signed
    up as '=HYPERLINK(...)') is kept as text with a leading apostrophe."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class MyUsageHandler(WorkbenchHandler):
    @endpoint(action="usage.own", summary="Your running servers, this month's hours and your quota",
              response=H.MY_USAGE)  # fmt: skip
    async def get(self) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            data = usage.of_user(s, ctx.user)
            data["quota"] = quotas.remaining(s, ctx.user)
            return data

        self.reply(await self.call(work))


class UsageHandler(WorkbenchHandler):
    @endpoint(
        action="usage.admin",
        summary="Server- and GPU-hours by user, team, project or profile (administrators); "
        "format=csv for a spreadsheet",
        response=H.USAGE_REPORT,
        query=(
            Param("group_by", {"type": "string", "enum": list(usage.GROUPS)}, "Default: user."),
            *WINDOW,
            Param("format", {"type": "string", "enum": ["json", "csv"]}, "Default: json."),
        ),
    )
    async def get(self) -> None:
        q = self.query
        start, end = parse_time("from", q.get("from")), parse_time("to", q.get("to"))

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            quotas.admin_only(ctx)
            return usage.report(s, q.get("group_by", "user"), start, end)

        data = await self.call(work)
        if q.get("format") != "csv":
            self.reply(data)
            return
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([data["group_by"], "server_hours", "gpu_hours", "runs", "from", "to"])
        for row in data["items"]:
            writer.writerow([csv_text(row["key"]), row["server_hours"], row["gpu_hours"],
                             row["runs"], data["from"], data["to"]])  # fmt: skip
        name = f"usage-by-{data['group_by']}-{data['from'][:10]}.csv"
        self.set_header("Content-Disposition", attachment(name))
        # jupyter-server's APIHandler.finish sets the Content-Type; tell it ours
        self.finish(out.getvalue(), set_content_type="text/csv; charset=utf-8")


class UsageSeriesHandler(WorkbenchHandler):
    @endpoint(
        action="usage.admin",
        summary="Server- and GPU-hours per hour or day, for charts (administrators)",
        response=H.USAGE_SERIES,
        query=(Param("bucket", {"type": "string", "enum": list(usage.BUCKETS)}, "Default: day."),
               *WINDOW),
    )  # fmt: skip
    async def get(self) -> None:
        q = self.query
        start, end = parse_time("from", q.get("from")), parse_time("to", q.get("to"))

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            quotas.admin_only(ctx)
            return usage.series(s, q.get("bucket", "day"), start, end)

        self.reply(await self.call(work))


class ServersHandler(WorkbenchHandler):
    @endpoint(
        action="usage.admin",
        summary="A page of the running servers with their profile and GPUs (administrators)",
        response=H.RUNNING,
        query=paging(usage.RUNNING_SORTS),
    )
    async def get(self) -> None:
        page = self.page_args()

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            quotas.admin_only(ctx)
            return page_json(usage.running(s, ctx, **page), usage.run_json)

        self.reply(await self.call(work))


class QuotasHandler(WorkbenchHandler):
    @endpoint(
        action="quotas.admin",
        summary="A page of the quotas, the default first, then teams', then users' "
        "(administrators)",
        response=H.QUOTAS,
        query=(
            Param("q", {"type": "string", "maxLength": 200}, "Text in the user's or team's name."),
            *paging(quotas.QUOTA_SORTS),
        ),
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = quotas.list_quotas(s, ctx, q=q.get("q"), **self.page_args())  # fmt: skip
            return page_json(page, lambda x: quotas.quota_json(s, x))

        self.reply(await self.call(work))


class QuotaHandler(WorkbenchHandler):
    @endpoint(action="quotas.admin", summary="A quota: 'default', 'user:<name>' or 'team:<name>'",
              response=H.QUOTA)  # fmt: skip
    async def get(self, subject: str) -> None:
        self.reply(await self.call(lambda s, ctx: quotas.get(s, ctx, subject)))

    @endpoint(
        action="quotas.admin",
        summary="Set a quota's limits (null: none, or the default's for a user); the next spawn "
        "respects it",
        body=H.QUOTA_PUT,
        response=H.QUOTA,
        example={"max_gpus": 1, "gpu_hours_per_month": 40},
    )
    async def put(self, subject: str) -> None:
        limits = self.body
        self.reply(await self.call(lambda s, ctx: quotas.put(s, ctx, subject, limits)[0]))

    @endpoint(action="quotas.admin", summary="Remove a quota", status=204)
    async def delete(self, subject: str) -> None:
        await self.call(lambda s, ctx: quotas.delete(s, ctx, subject))
        self.reply(None, status=204)
