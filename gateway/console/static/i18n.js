// Labels in Chinese (default: the users are Chinese sales teams) and English. The API stays English:
// codes and enumerations from it (stages, statuses, kinds) are translated here when a label exists.
const LABELS = {
  zh: {
    title: "销售平台", signin: "登录", username: "用户名", password: "密码", signout: "退出", lang: "English",
    bad_login: "用户名或密码错误", work: "我的工作", dashboards: "报表看板", customers: "客户",
    due_contact: "待联系客户", visits_to_log: "待填写拜访记录", open_opportunities: "进行中的商机",
    held_orders: "信用冻结订单", inbox: "待我审批", approve: "同意", reject: "驳回", release: "解除冻结",
    comment: "审批意见", decided: "已处理", none: "暂无", number: "编号", customer: "客户", amount: "金额 (元)",
    reason: "原因", step: "审批环节", since: "等待自", due_by: "截止", log_due_by: "记录截止 (2个工作日)",
    purpose: "目的", planned_at: "计划时间", title_col: "商机", stage: "阶段", probability: "赢率 %",
    expected_close: "预计成交", status: "状态", created: "创建", owner: "负责人", region: "区域", team: "团队",
    industry: "行业", credit: "信用", limit: "信用额度", available: "可用额度", receivable: "应收余额",
    exposure: "占用", last_visits: "最近拜访", open_orders: "未完成订单", service_requests: "服务请求",
    timeline: "订单时间线", partial: "部分数据暂不可用：以下服务未响应", order: "订单", total: "合计",
    by_rep: "目标与完成 · 按销售代表", by_region: "目标与完成 · 按区域", by_month: "目标与完成 · 按月",
    target: "目标", achieved: "完成 (订单)", pipeline: "销售漏斗", aging: "应收账龄", osb: "订单到回款周期 (天, 中位数)",
    sla: "服务 SLA 达成率", period: "期间", current: "未到期", d1_30: "1-30天", d31_60: "31-60天",
    d61_90: "61-90天", d90: "90天以上", order_to_ship: "下单→发货", ship_to_invoice: "发货→开票",
    invoice_to_cash: "开票→回款", order_to_cash: "下单→回款", compliance: "SLA 达成率 %", resolved: "已解决",
    identified: "初步接触", qualified: "需求确认", proposal: "方案报价", negotiation: "商务谈判",
    quote: "报价单", contract: "合同", visit: "拜访计划", return: "退货", loan: "借货", credit_release: "信用放行",
    loading: "加载中…", not_found: "未找到，或无权查看", error: "出错了", no_charts: "图表库未加载",
    direct_manager: "直属经理", division_head: "事业部负责人", marketing_director: "市场总监",
    product_manager: "产品经理", manager: "经理", events: "事件", documents: "单据", search: "搜索客户",
    kind: "类型", draft: "草稿", confirming: "确认中", confirmed: "已确认", credit_hold: "信用冻结",
    partially_shipped: "部分发货", shipped: "已发货", invoiced: "已开票", paid: "已回款", closed: "已关闭",
    cancelled: "已取消", pending_approval: "待审批", approved: "已批准", rejected: "已驳回", sent: "已发送",
    accepted: "已接受", planned: "已计划", in_field: "外出中", returned: "已返回", logged: "已记录",
    signed: "已签约", prospect: "潜在客户", open: "处理中",
  },
  en: {
    title: "Sales Platform", signin: "Sign in", username: "Username", password: "Password", signout: "Sign out",
    lang: "中文", bad_login: "Wrong username or password", work: "My work", dashboards: "Dashboards",
    customers: "Customers", due_contact: "Customers due for contact", visits_to_log: "Visits to log",
    open_opportunities: "Open opportunities", held_orders: "Orders on credit hold", inbox: "Approvals waiting for me",
    approve: "Approve", reject: "Reject", release: "Release", comment: "Comment", decided: "Done", none: "Nothing",
    number: "Number", customer: "Customer", amount: "Amount (CNY)", reason: "Reason", step: "Step",
    since: "Waiting since", due_by: "Due by", log_due_by: "Log due by (2 working days)", purpose: "Purpose",
    planned_at: "Planned", title_col: "Opportunity", stage: "Stage", probability: "Probability %",
    expected_close: "Expected close", status: "Status", created: "Created", owner: "Owner", region: "Region",
    team: "Team", industry: "Industry", credit: "Credit", limit: "Credit limit", available: "Available",
    receivable: "Receivable", exposure: "Exposure", last_visits: "Last visits", open_orders: "Open orders",
    service_requests: "Service requests", timeline: "Order timeline",
    partial: "Part of this page is missing: these services did not answer", order: "Order", total: "Total",
    by_rep: "Target vs achieved · by rep", by_region: "Target vs achieved · by region",
    by_month: "Target vs achieved · by month", target: "Target", achieved: "Achieved (ordered)",
    pipeline: "Pipeline funnel", aging: "Receivables aging", osb: "OSB cycle time (days, median)",
    sla: "Service SLA compliance", period: "Period", current: "Current", d1_30: "1-30 days", d31_60: "31-60 days",
    d61_90: "61-90 days", d90: "Over 90 days", order_to_ship: "Order → ship", ship_to_invoice: "Ship → invoice",
    invoice_to_cash: "Invoice → cash", order_to_cash: "Order → cash", compliance: "SLA compliance %",
    resolved: "Resolved", identified: "Identified", qualified: "Qualified", proposal: "Proposal",
    negotiation: "Negotiation", quote: "Quote", contract: "Contract", visit: "Visit plan", return: "Return",
    loan: "Loan", credit_release: "Credit release", loading: "Loading…",
    not_found: "Not found, or not yours to see", error: "Something went wrong", no_charts: "The chart library is not loaded",
    direct_manager: "Direct manager", division_head: "Division head", marketing_director: "Marketing director",
    product_manager: "Product manager", manager: "Manager", events: "Events", documents: "Documents",
    search: "Search customers", kind: "Kind",
  },
};

let lang = localStorage.getItem("console.lang") || "zh";

export function t(key) {
  return (LABELS[lang] && LABELS[lang][key]) || LABELS.en[key] || key;
}

export function language() {
  return lang;
}

export function toggleLanguage() {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("console.lang", lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
