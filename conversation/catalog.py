"""Every sentence a citizen reads, in Chinese first and English second.

Texts are short and say what to send next: many citizens are elderly or upset. An office may
override any entry from its config file (`[texts.zh]`, `[texts.en]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conversation.casework_texts import CASEWORK_EN, CASEWORK_ZH
from conversation.desk_texts import DESK_EN, DESK_ZH

LANGUAGES = ("zh", "en")

ZH: dict[str, str] = {
    # Main menu
    "greeting": "您好！这里是{office}。请回复数字，选择您要办的事：",
    "menu": "请回复数字，选择您要办的事：",
    "menu.file": "我要反映",
    "menu.status": "进度查询",
    "menu.rate": "评价",
    "menu.suggest": "意见建议",
    "menu.faq": "常见问题",
    "menu.staff": "人工服务",
    "menu.thanks": "不客气，能帮上忙就好！还有别的事，随时找我们。",
    "menu.unknown": "抱歉，没看明白。请回复下面的数字；要反映问题，也可以直接把情况写下来（10个字以上）。",
    "menu.draft": "您还有一件事项没填完，回复“{key}”可以接着填。",
    "menu.media": "收到了。要反映问题请先回复“{key}”，照片在填写时的“照片”一步发送。",
    "cancelled": "已取消，没有提交任何内容。",
    # Forms
    "form.start": "好的，我们一步一步来。随时回复“返回”改上一步，回复“取消”放弃。",
    "form.start_free_text": "您说的情况已经记下了。还需要几步，每一步都会告诉您怎么填。",
    "form.optional": "（不想填请回复“跳过”）",
    # A matter told with its place: what was read from it, to confirm (flows/story.py)
    "guess.head": "您说的情况已经记下了。我们从您的话里看出：",
    "guess.ask": "对的话请回复“1”；哪一项不对，回复它的数字改一下。",
    "guess.ask.place": "对的话请回复“1”；不对请直接发送正确的地点（文字，或在微信里发送位置）。",
    "guess.ok": "对，继续",
    "guess.fix": "改{field}",
    "guess.label": "核对类别和地点",
    "form.skipped": "未填写",
    "ask.category": "请选择事项的类别，回复数字：",
    "ask.category.suggested": "根据您说的情况，可能是“{label}”，已放在第1项。",
    "ask.description": "请写下事情经过：什么时间、在哪里、发生了什么、希望怎么解决（10～2000字）。",
    "ask.location": "事情发生在哪里？请写出地址，例如“XX区XX街道XX小区3号楼”；在微信里也可以直接发送位置。",
    "ask.photos": "有照片可以直接发送（最多{max}张），发完回复“完成”；没有照片请回复“跳过”。",
    "ask.name": "请写下您的姓名，方便工作人员联系您（我们会保密）。不想留姓名和电话，可以回复“匿名”。",
    "ask.phone": "请留下您的手机号码，例如 13800138000，方便工作人员联系您。",
    "ask.choice": "请回复数字选择：",
    "ask.text": "请写下您的回答。",
    "err.choice": "请回复列表里的数字（1～{n}）。",
    "err.text.short": "写得有点少，请至少写{min}个字。",
    "err.text.long": "内容太长了（最多{max}字），请精简后再发。",
    "err.description.short": "写得有点少，请至少写{min}个字，说清楚发生了什么。",
    "err.description.long": "内容超过{max}字了，请精简后再发，或者只写要点。",
    "err.location": "请写出具体地址（至少2个字），或者发送一个位置。",
    "err.location.long": "地址太长了，请控制在{max}个字以内。",
    "err.name.empty": "请写下您的姓名。",
    "err.name.long": "姓名太长了，请控制在30个字以内。",
    "err.name.digits": "姓名不能只有数字，请写您的名字。",
    "err.phone": "这个号码不对。请发送11位手机号码，例如 13800138000；境外号码请带国家代码，例如 +85291234567。",
    "err.need_text": "这一步请用文字回复。",
    "voice.type_please": "您的语音收到了，不过我们暂时听不了语音。麻烦您打字写一下，简单几句就可以。",
    "err.photos.text": "请发送照片；发完请回复“完成”，没有照片请回复“跳过”。",
    "err.not_optional": "这一项需要填写，不能跳过。",
    "photos.received": "已收到第{n}张照片。还可以接着发，发完请回复“完成”。",
    "photos.full": "已收到{n}张照片，不能再多了。",
    "photos.not_now": "这里不用发照片，请按下面的提示用文字回复。",
    "voice.saved": "已收到您的语音，会一起交给工作人员。请再用文字简单写一下情况（10个字以上）。",
    "field.category": "类别",
    "field.description": "情况",
    "field.location": "地点",
    "field.photos": "照片",
    "field.name": "姓名",
    "field.phone": "手机",
    "confirm.head": "请核对要提交的内容：",
    "confirm.photos": "{n}张",
    "confirm.ask": "没问题请回复“1”提交：",
    "confirm.submit": "提交",
    "confirm.change": "修改一项",
    "confirm.cancel": "取消",
    "confirm.which": "要修改哪一项？回复数字：",
    "submitted": (
        "提交成功！您的事项编号是 {code}，请记好。\n"
        "按照《信访工作条例》，我们会在15日内（{due}前）告诉您是否受理。"
        "想知道进展，随时回复“2”查询。"
    ),
    "submitted.suggestion": "谢谢您的意见建议！编号 {code}。我们会认真研究，有结果会告诉您。",
    "notice.legal": (
        "提示：涉及法院判决、诉讼、仲裁的事项，依法要通过法院、仲裁等途径解决（诉访分离）。"
        "您仍可登记，我们会告诉您该找哪个部门。"
    ),
    # Resume
    "resume.ask": "您上次还有一件事项没填完（填到了“{step}”）。要接着填吗？",
    "resume.continue": "接着填",
    "resume.restart": "重新开始",
    "resume.drop": "不用了",
    # Status
    "status.none": "您还没有在这里反映过事项。如有事项编号，可以直接发送编号查询。",
    "status.head": "您反映的事项：",
    "status.item": "{code}（{category}）\n状态：{status}，{updated}更新",
    "status.due": "\n{label}：{date}前",
    "status.hint": "发送编号可以查看详情；回复“菜单”返回。",
    "status.not_found": "没有找到编号为 {code}、由您本人提交的事项。请核对编号再发；需要帮助请回复“人工”。",
    "status.detail": "事项 {code}（{category}）\n状态：{status}\n提交时间：{created}",
    "status.history": "\n办理经过：",
    "status.ask_code": "请发送事项编号，例如 XF20261122-7K3M9Q；回复“菜单”返回。",
    "status.more": "回复“更多”查看更早的记录。",
    "status.earlier": "事项 {code} 更早的记录：",
    "status.no_more": "前面没有更早的记录了。",
    "status.submitted": "已登记，等待受理",
    "status.accepted": "已受理",
    "status.redirected": "不予受理，已告知应去的部门",
    "status.assigned": "已交办给责任单位",
    "status.returned": "退回重新交办",
    "status.replied": "已答复",
    "status.closed": "已办结",
    "status.rated": "已办结并评价",
    "status.review_requested": "已申请复查",
    "due.accept": "告知是否受理",
    "due.finish": "办结",
    "due.review": "可申请复查",
    "due.review_decision": "复查答复",
    "due.stage": "{name}",
    # History of a case, one sentence a step, after its date (the step's type is the key)
    "history.submitted": "已登记",
    "history.accepted": "已受理",
    "history.accepted.by": "{department}已受理",
    "history.redirected": "不予受理：{reason}，请向{department}反映",
    "history.assigned": "交办{department}办理",
    "history.returned": "退回，重新交办",
    "history.replied": "答复：{note}",
    "history.closed": "办结",
    "history.extended": "延期{days}天：{reason}",
    "history.rated": "已评价：{rating}",
    "history.review_requested": "申请复查",
    "history.other": "有新进展",
    "history.other.note": "有新进展：{note}",
    "history.department": "责任单位",
    # Following a case: proof, anonymity, 补充 / 催办, the page's choices
    "proof.ask": (
        "为保护反映人的信息，查看事项 {code} 需要先确认身份：\n"
        "· 有查询码（匿名反映时收到的8位码）请直接发送；\n"
        "· 或回复“1”，我们把6位验证码发到登记的手机上。"
    ),
    "proof.ask.query_only": (
        "为保护反映人的信息，查看事项 {code} 需要先确认身份：请发送该事项的查询码"
        "（匿名反映时收到的8位码）。没有查询码请回复“人工”。"
    ),
    "proof.send": "发验证码到登记的手机",
    "proof.sent": "验证码已发到尾号 {tail} 的手机，{minutes}分钟内有效。请回复这6位数字。",
    "proof.no_phone": (
        "这个编号没有可以接收验证码的手机。请发送查询码；都没有的话，请回复“人工”。"
    ),
    "proof.wrong_query": "查询码不对。请核对事项编号和查询码后再发；需要帮助请回复“人工”。",
    "proof.wrong_sms": "验证码不对，还可以再试{left}次。",
    "proof.expired": "这个验证码已失效（超过10分钟或错误次数太多）。回复“1”重新获取。",
    "proof.no_code": "还没有给您发过验证码。回复“1”获取，或发送查询码。",
    "proof.throttled": "尝试次数太多了，为了安全请在{day} {time}以后再试；着急请回复“人工”。",
    "proof.unclear": "请发送查询码（8位）或收到的6位验证码。",
    "proof.passed": "身份已确认，以后在这里可以直接查询。",
    "proof.sms": "【验证码】{code}，用于查询您反映的事项，{minutes}分钟内有效。如非本人操作，请忽略。",
    "anonymous.meaning": (
        "好的，匿名反映：我们不记录您的姓名和手机，工作人员无法打电话联系您。"
        "提交后您会收到事项编号和查询码，凭这两个可以在任何渠道查询进度。"
    ),
    "anonymous.shown": "匿名",
    "anonymous.receipt": (
        "您的查询码是 {query}，只显示这一次，请抄下来或截图保存。"
        "在任何渠道发送编号 {code}，再按提示发送查询码，就能查看进度。"
    ),
    "status.can": "您现在可以回复数字：",
    "status.review_until": "\n可申请复查至：{date}",
    "status.action.supplement": "补充材料",
    "status.action.urge": "催办",
    "status.action.rate": "评价",
    "status.action.review": "申请复查",
    "follow.which": "您有几件事项可以{action}，请发送其中一个编号：",
    "follow.none.supplement": "您在这里没有可以补充的事项。要反映新情况，请回复“1”。",
    "follow.none.urge": "您在这里没有正在办理、可以催办的事项。",
    "follow.none.rate": "您在这里没有可以评价的事项。",
    "follow.none.review": "您在这里没有可以申请复查的事项。",
    "follow.not_now.supplement": "这件事项现在不能补充材料了；有新情况请重新反映（回复“1”）。",
    "follow.not_now.urge": "这件事项已经办结或不在办理中，不能催办。",
    "follow.not_now.rate": "这件事项现在还不能评价，办结后会请您评价。",
    "follow.not_now.review": "这件事项现在不能申请复查（答复后30日内可以申请）。",
    "follow.supplement.ask": "请发送要补充到事项 {code} 的内容：文字、照片或位置都可以，发完回复“完成”。",
    "follow.supplement.ask_review": (
        "事项 {code} 已答复。现在补充材料，会同时为您申请复查。"
        "请发送要补充的文字、照片或位置，发完回复“完成”；不想申请复查请回复“菜单”。"
    ),
    "follow.supplement.short": "写得有点少，请多写几个字说明要补充什么。",
    "follow.supplement.added": "已补充到事项 {code}，并转告承办单位。还可以接着发，发完回复“完成”。",
    "follow.supplement.review": (
        "已补充到事项 {code}，并为您申请了复查，上一级机关会在{due}前书面答复。"
        "还可以接着发，发完回复“完成”。"
    ),
    "follow.supplement.done": "好的，补充完了。",
    "repeat.ask": "您在{day}反映过一件很像的事（{code}）：“{quote}”\n这次是同一件事吗？",
    "repeat.same": "是同一件事，补充到原事项",
    "repeat.new": "是新的事项，继续登记",
    "repeat.again": "请回复“1”或“2”告诉我们，好把这件事放对地方。",
    "repeat.added": "好的，已补充到您的事项 {code}，承办单位会一并看到，不再另行登记。想知道进展，随时回复“2”查询。",
    "repeat.gone": "事项 {code} 刚好办完，补充不进去了，我们按新事项为您登记。",
    "follow.supplement.too_late": "事项 {code} 申请复查的期限已过，不能再补充。有新情况请重新反映（回复“1”）。",
    "follow.supplement.not_possible": "事项 {code} 现在不能补充材料。需要帮助请回复“人工”。",
    "follow.urged": "已为您催办事项 {code}（第{n}次），承办单位已收到提醒。",
    "follow.too_soon": "这件事项刚催办过，{day} {time}以后可以再催办。",
    "follow.supplement.ask.sms": "请用短信发送要补充到事项 {code} 的文字，发完回复“完成”。照片请在{online}补充。",
    "sms.menu": "您好，这里是{office}。回复事项编号（如XF20260101-ABC123）可查进度、补充、催办、评价。新事项请到{online}反映或拨打{hotline}。",
    "sms.file_elsewhere": "短信暂不能登记新事项。请到{online}反映，或拨打{hotline}，我们会认真办理。已登记的事项回复编号可查进度。",
    "sms.no_staff": "短信不能转人工。请拨打{hotline}（{hours}），或在{online}找人工服务。",
    "sms.capped": "您发来的短信较多，为节省费用，{until}前不再短信回复。查进度请用{online}，或拨打{hotline}。",
    "sms.cut": "…（内容较长，全文请在{online}查看）",
    "history.supplemented": "您补充了材料",
    "history.urged": "您催办了一次",
    "staff.alert.supplemented": "群众补充了材料",
    "staff.alert.urged": "群众催办",
    "kind.petition": "反映事项",
    "kind.suggestion": "意见建议",
    # Rating
    "rate.none": "您目前没有需要评价的事项。事项办结后，我们会请您评价。回复“菜单”可以办其他事。",
    "rate.which": "请选择要评价的事项：",
    "rate.ask": "请对事项 {code} 的办理结果评价，回复数字：",
    "rate.comment": "谢谢！还有什么想说的吗？请直接写下来；没有请回复“跳过”。",
    "rate.unhappy_reason": "很抱歉没让您满意。请告诉我们哪里不满意，我们会转给负责人（不想写请回复“跳过”）。",
    "rate.thanks": "感谢您的评价！",
    "rate.done": "评价已记录，谢谢您。",
    "rate.already": "这件事项已经评价过了，谢谢您。回复“菜单”可以办其他事。",
    "rate.invite": "您反映的事项 {code} 已办结。请对办理结果评价，回复数字：",
    "rate.review_offer": "按照规定，您可以在{until}前申请复查，由上一级机关重新审查。要申请复查吗？",
    "rate.review_yes": "申请复查",
    "rate.review_no": "不用了",
    "rate.review_requested": "已为您登记复查申请，上一级机关会在{due}前给您书面答复。有进展会告诉您。",
    "rate.review_too_late": "申请复查的期限已过（{until}）。如有疑问，请回复“人工”。",
    "scale3.1": "满意",
    "scale3.2": "基本满意",
    "scale3.3": "不满意",
    "scale5.1": "非常满意",
    "scale5.2": "满意",
    "scale5.3": "基本满意",
    "scale5.4": "不满意",
    "scale5.5": "非常不满意",
    # Survey by SMS: tried in this order until one fits a single 70-character SMS with the 【签名】
    "survey.sms.full": "您反映的事项（尾号{ref}）已办结，请评价，回复：{options}，可附意见。回复TD退订",
    "survey.sms.medium": "事项{ref}已办结，请评价，回复：{options}，可附意见。回复TD退订",
    "survey.sms.short": "请评价事项{ref}：{options}。回复TD退订",
    "survey.sms.option": "{n}{label}",
    "survey.sms.separator": " ",
    "survey.sms.clarify": "没看懂您的回复。请评价事项{ref}，回复：{options}。回复TD退订",
    "survey.sms.which": "您有几件事项待评价（尾号{refs}），请在评价后加尾号，如“1 {first}”",
    "survey.sms.unhappy": "很抱歉没让您满意。回复原因会转给负责人；回复“复查”可申请复查",
    "survey.sms.review_requested": "已为您登记复查申请，{due}前书面答复",
    "survey.sms.review_too_late": "申请复查的期限已过（{until}），如有疑问请致电12345",
    # FAQ
    "faq.head": "常见问题，回复数字查看：",
    "faq.none": "没有找到相关的问题。可以换个说法，或回复“人工”找工作人员。",
    "faq.more": "回复其他数字查看别的问题，回复“菜单”返回。",
    "faq.empty": "暂时没有常见问题。需要帮助请回复“人工”。",
    "faq.solved": "这解决了您的问题吗？",
    "faq.solved.yes": "是",
    "faq.solved.no": "不是，我要反映",
    "faq.glad": "太好了！还有别的事，随时找我们。",
    # Staff
    "handoff.in_hours": "已为您转人工服务，工作人员会尽快在这里回复您。",
    "handoff.off_hours": "已记下您要找工作人员。现在不是工作时间（{hours}），上班后会第一时间联系您。",
    "handoff.wait": "等待期间，您仍可以回复“菜单”使用其他服务。",
    "staff.joined": "工作人员{name}已接手，请直接在这里说，会尽快回复您。",
    "staff.says": "工作人员{name}：{text}",
    "staff.left": "工作人员已结束本次对话。还需要帮助请回复“人工”，回复“菜单”可使用其他服务。",
    "staff.left.sms": "工作人员已结束本次对话。还需要帮助请拨打{hotline}；回复事项编号可查进度。",
    "risk.emergency": (
        "如果您或他人正面临危险，请立即拨打 110（报警）或 120（急救）。"
        "您反映的情况我们已优先转给工作人员。"
    ),
    # Progress on a case, told on the citizen's own channel (kept short: it may go by SMS)
    "notify.receipt": (
        "您反映的事项已登记，编号 {code}，请记好。"
        "按照《信访工作条例》，我们会在{due}前告诉您是否受理，有进展会短信告诉您。"
    ),
    "notify.receipt.suggestion": "您的意见建议已登记，编号 {code}。我们会认真研究，有结果会告诉您。",
    "notify.accepted": "您反映的事项 {code} 已受理，将在{due}前办结，有进展会告诉您。",
    "notify.redirected": "您反映的事项 {code} 依法不予受理：{reason}。请向{where}反映。有疑问请回复“人工”。",
    "notify.replied": "您反映的事项 {code} 有答复了：\n{note}\n如不满意，可在{review}前申请复查。",
    "notify.closed": "您反映的事项 {code} 已办结，谢谢您的耐心。",
    "notify.extended": "您反映的事项 {code} 情况较复杂，办理期限依法延长至{due}。原因：{reason}",
    "template.status.accepted": "已受理",
    "template.status.redirected": "不予受理",
    "template.status.replied": "已答复",
    "template.status.closed": "已办结",
    "template.status.extended": "已延期",
    "template.finish_by": "办结期限：{due}",
    # Generic
    "unsupported": "抱歉，这类消息暂时看不了。请发送文字、照片或位置；回复“菜单”可以看能办的事。",
    "error.internal": "系统暂时有点忙，请稍后再发一次。您已填写的内容不会丢。",
    "rate_limited": "您发得太快了，请过一分钟再发。您已填写的内容不会丢。",
    "invalid_text": "这条消息里有无法识别的字符，请重新输入文字再发一次。",
    "seen_again": (
        "这条消息我们已经收到并办理过了，不会重复办理。请按上一条提示接着回复；"
        "回复“菜单”可以看能办的事。"
    ),
    # -- for staff: alerts, the duty group, relayed words --------------------------------------
    "staff.alert.handoff": "群众要求人工服务",
    "staff.alert.risk": "高风险事项，请立即处理",
    "staff.alert.unhappy": "群众对办理结果不满意",
    "staff.alert.review": "群众申请复查",
    "staff.alert.deadline.warning": "期限将到",
    "staff.alert.deadline.missed": "已超期",
    "staff.alert.notification.failed": "无法通知群众",
    "staff.alert.case": "事项：{code}{category}",
    "staff.alert.summary": "摘要：{summary}",
    "staff.alert.phone": "（电话 {phone}）",
    "staff.alert.channel": "渠道：{channel}",
    "staff.alert.deadline": "期限：{deadline}，{due}",
    "staff.alert.risk_words": "风险词：{words}",
    "staff.alert.rating": "评价：{label}",
    "staff.alert.rating_comment": "，理由：{comment}",
    "staff.alert.undelivered": "未送达：{topic}（{error}）",
    "staff.group.no_thread": "找不到对应的群众。请回复告警消息或群众的消息后再说。",
    "staff.group.ended": "这段对话已经结束了。",
    "staff.group.claimed_by": "已由{name}认领。",
    "staff.telegram.claimed": "✅ {name} 已认领。回复这条消息即可与群众对话，说完发送 /done。",
    "staff.telegram.done": "已结束与群众的对话，之后群众的消息由系统答复。",
    "staff.wecom.claimed": "✅ 已认领{code}。现在您发的每条消息都会转给群众，说完请发送“结束”。",
    "staff.desk.claimed": "已认领。您发送的消息会转给群众，说完请按“结束”。",
    "staff.desk.done": "已结束对话，之后群众的消息由系统答复。",
    "staff.wecom.done": "已结束{code}的对话，之后群众的消息由系统答复。",
    "staff.claimed_again": "现在您发的消息会转给{code}的群众。",
    "staff.no_account": "您（{user}）还没有民意的账号，消息没有转给任何人。请管理员用 minyi staff add --wecom {user} 为您开通。",
    "staff.text_only": "这里只能转发文字，请把要说的话打出来。",
    "staff.no_case": "没有找到事项 {code}，请核对编号。",
    "staff.nothing_claimed": "您现在没有认领对话，或同时认领了几个。请发送“认领 事项编号”，例如 认领 XF20261122-7K3M9Q，之后您的消息会转给这位群众。",
    "staff.group.citizen_says": "💬 群众：{text}",
    "staff.show.unfiled": "（尚未立案）群众渠道：{channel}",
    "staff.show.case": "事项 {code}（{category}）状态：{status}",
    "staff.show.citizen": "群众：{name} {phone}",
    "staff.show.place": "地点：{place}",
    "staff.show.what": "情况：{text}",
    "staff.show.history": "经过：",
    "relay.image": "[照片]",
    "relay.voice": "[语音]",
    "relay.location": "[位置] {place}",
    "relay.other": "[消息]",
}

EN: dict[str, str] = {
    "greeting": "Hello! This is {office}. Reply with a number to choose:",
    "menu": "Reply with a number to choose:",
    "menu.file": "Report a matter",
    "menu.status": "Check progress",
    "menu.rate": "Rate a handled matter",
    "menu.suggest": "Make a suggestion",
    "menu.faq": "Common questions",
    "menu.staff": "Talk to staff",
    "menu.thanks": "You are welcome! If there is anything else, we are here.",
    "menu.unknown": (
        "Sorry, I did not understand. Reply with a number below, or simply describe your matter "
        "(10 characters or more)."
    ),
    "menu.draft": "You have an unfinished matter; reply {key} to continue it.",
    "menu.media": "Received. To report a matter reply {key} first; photos are sent at the photo step.",
    "cancelled": "Cancelled. Nothing was submitted.",
    "form.start": "Let's go step by step. Reply 'back' to change the previous answer, 'cancel' to stop.",
    "form.start_free_text": "We have noted what you wrote. A few more steps, each explained.",
    "form.optional": "(reply 'skip' to leave it out)",
    "guess.head": "We have noted what you wrote. From it we read:",
    "guess.ask": "If this is right, reply 1; if something is wrong, reply its number to change it.",
    "guess.ask.place": "If this is right, reply 1; if not, send the right place (in words, or a location).",
    "guess.ok": "Right, go on",
    "guess.fix": "Change: {field}",
    "guess.label": "Check the category and place",
    "form.skipped": "not given",
    "ask.category": "Choose the kind of matter, reply with a number:",
    "ask.category.suggested": "From what you wrote it may be '{label}', listed first.",
    "ask.description": (
        "Describe what happened: when, where, what, and what you would like done (10-2000 characters)."
    ),
    "ask.location": "Where did it happen? Write the address, or send a location.",
    "ask.photos": "Send photos if you have any (up to {max}), then reply 'done'; otherwise reply 'skip'.",
    "ask.name": "Please tell us your name so staff can contact you (kept confidential). Reply 'anonymous' to leave no name and no mobile.",
    "ask.phone": "Please give your mobile number, e.g. +8613800138000, so staff can contact you.",
    "ask.choice": "Reply with a number:",
    "ask.text": "Please write your answer.",
    "err.choice": "Please reply with a number from the list (1-{n}).",
    "err.text.short": "That is a bit short; please write at least {min} characters.",
    "err.text.long": "That is too long (at most {max} characters); please shorten it.",
    "err.description.short": "That is a bit short; please write at least {min} characters about what happened.",
    "err.description.long": "That is over {max} characters; please shorten it to the key points.",
    "err.location": "Please write a specific address (at least 2 characters) or send a location.",
    "err.location.long": "That address is too long; please keep it under {max} characters.",
    "err.name.empty": "Please write your name.",
    "err.name.long": "That name is too long; please keep it under 30 characters.",
    "err.name.digits": "A name cannot be only digits; please write your name.",
    "err.phone": (
        "That number does not look right. Send an 11-digit Chinese mobile number such as "
        "13800138000, or an international number with its country code, such as +85291234567."
    ),
    "err.need_text": "Please answer this step in text.",
    "voice.type_please": (
        "We got your voice message, but cannot listen to voice messages yet. Please type it "
        "instead; a few words are enough."
    ),
    "err.photos.text": "Please send photos, then reply 'done'; with no photos reply 'skip'.",
    "err.not_optional": "This one is needed and cannot be skipped.",
    "photos.received": "Photo {n} received. Send more, or reply 'done'.",
    "photos.full": "{n} photos received; that is the maximum.",
    "photos.not_now": "No photos are needed here; please answer the question below in words.",
    "voice.saved": (
        "Your voice message is saved and goes to staff with the case. Please also write a short "
        "summary (10 characters or more)."
    ),
    "field.category": "Kind",
    "field.description": "What happened",
    "field.location": "Where",
    "field.photos": "Photos",
    "field.name": "Name",
    "field.phone": "Mobile",
    "confirm.head": "Please check what you are submitting:",
    "confirm.photos": "{n}",
    "confirm.ask": "If it is right, reply 1 to submit:",
    "confirm.submit": "Submit",
    "confirm.change": "Change an answer",
    "confirm.cancel": "Cancel",
    "confirm.which": "Which answer do you want to change? Reply with a number:",
    "submitted": (
        "Submitted! Your case code is {code}; please keep it.\n"
        "By law we will tell you within 15 days (by {due}) whether the matter is accepted. "
        "Reply 2 at any time to check progress."
    ),
    "submitted.suggestion": "Thank you for your suggestion! Code {code}. We will study it and tell you the outcome.",
    "notice.legal": (
        "Note: matters involving court judgments, lawsuits or arbitration must go through courts "
        "or arbitration by law. You may still register it and we will tell you where to go."
    ),
    "resume.ask": "You have an unfinished matter (last step: '{step}'). Continue it?",
    "resume.continue": "Continue",
    "resume.restart": "Start again",
    "resume.drop": "Discard it",
    "status.none": "You have not reported any matter here yet. If you have a case code, send it.",
    "status.head": "Your matters:",
    "status.item": "{code} ({category})\nStatus: {status}, updated {updated}",
    "status.due": "\n{label}: by {date}",
    "status.hint": "Send a case code for details; reply 'menu' to go back.",
    "status.not_found": (
        "No matter with code {code} submitted by you was found. Please check the code; reply "
        "'staff' for help."
    ),
    "status.detail": "Case {code} ({category})\nStatus: {status}\nSubmitted: {created}",
    "status.history": "\nHistory:",
    "status.ask_code": "Send the case code, e.g. XF20261122-7K3M9Q; reply 'menu' to go back.",
    "status.more": "Reply 'more' for the earlier steps.",
    "status.earlier": "Earlier steps of case {code}:",
    "status.no_more": "There are no earlier steps.",
    "status.submitted": "registered, awaiting acceptance",
    "status.accepted": "accepted",
    "status.redirected": "not accepted; told where to go",
    "status.assigned": "assigned to a department",
    "status.returned": "returned for reassignment",
    "status.replied": "answered",
    "status.closed": "closed",
    "status.rated": "closed and rated",
    "status.review_requested": "review requested",
    "due.accept": "Decision on acceptance",
    "due.finish": "Completion",
    "due.review": "Review may be requested",
    "due.review_decision": "Review decision",
    "due.stage": "{name}",
    "history.submitted": "registered",
    "history.accepted": "accepted",
    "history.accepted.by": "accepted by {department}",
    "history.redirected": "not accepted: {reason}; please take it to {department}",
    "history.assigned": "assigned to {department}",
    "history.returned": "returned for reassignment",
    "history.replied": "answered: {note}",
    "history.closed": "closed",
    "history.extended": "deadline extended by {days} days: {reason}",
    "history.rated": "rated: {rating}",
    "history.review_requested": "review requested",
    "history.other": "progress recorded",
    "history.other.note": "progress recorded: {note}",
    "history.department": "the department in charge",
    "proof.ask": (
        "To protect the person who reported it, case {code} opens only after a check:\n"
        "· send its query code (the 8 characters given to an anonymous report), or\n"
        "· reply '1' and we text a 6-digit code to the mobile on file."
    ),
    "proof.ask.query_only": (
        "To protect the person who reported it, case {code} opens only with its query code "
        "(the 8 characters given to an anonymous report). Without one, reply 'staff'."
    ),
    "proof.send": "Text a code to the mobile on file",
    "proof.sent": "A code went to the mobile ending {tail}; it is valid for {minutes} minutes. Reply with its 6 digits.",
    "proof.no_phone": "No mobile can take a code for this case. Send its query code, or reply 'staff'.",
    "proof.wrong_query": "That query code is not right. Check the case code and the query code; reply 'staff' for help.",
    "proof.wrong_sms": "That code is not right; {left} tries left.",
    "proof.expired": "That code no longer works (10 minutes passed, or too many tries). Reply '1' for a new one.",
    "proof.no_code": "No code was sent to you yet. Reply '1' for one, or send the query code.",
    "proof.throttled": "Too many tries. For safety, try again after {day} {time}; reply 'staff' if it is urgent.",
    "proof.unclear": "Please send the 8-character query code or the 6-digit code you received.",
    "proof.passed": "Thank you, confirmed: from now on you can look it up here directly.",
    "proof.sms": "Your code is {code}, to look up your case; valid for {minutes} minutes. Ignore it if you did not ask.",
    "anonymous.meaning": (
        "Anonymous report: we keep no name and no mobile, so staff cannot call you back. "
        "You will get a case code and a query code; with both you can follow it from anywhere."
    ),
    "anonymous.shown": "anonymous",
    "anonymous.receipt": (
        "Your query code is {query}. It is shown only this once: write it down or take a "
        "screenshot. Send the case code {code} anywhere, then the query code, to see progress."
    ),
    "status.can": "You can now reply with a number:",
    "status.review_until": "\nReview may be asked until: {date}",
    "status.action.supplement": "Add information",
    "status.action.urge": "Urge",
    "status.action.rate": "Rate",
    "status.action.review": "Ask for a review",
    "follow.which": "Several of your cases allow this ({action}); send the code of one:",
    "follow.none.supplement": "You have no case here to add to. To report something new, reply '1'.",
    "follow.none.urge": "You have no case here that is being handled and can be urged.",
    "follow.none.rate": "You have no case here to rate.",
    "follow.none.review": "You have no case here that can be reviewed.",
    "follow.not_now.supplement": "This case takes no more additions; report anything new with '1'.",
    "follow.not_now.urge": "This case is finished or not being handled; it cannot be urged.",
    "follow.not_now.rate": "This case cannot be rated yet; you will be asked when it closes.",
    "follow.not_now.review": "A review cannot be asked now (only within 30 days of the answer).",
    "follow.supplement.ask": "Send what to add to case {code}: words, photos or a location; reply 'done' when finished.",
    "follow.supplement.ask_review": (
        "Case {code} was answered. Adding information now also asks for a review. Send words, "
        "photos or a location, then 'done'; reply 'menu' if you want no review."
    ),
    "follow.supplement.short": "That is very short; please say a little more about what to add.",
    "follow.supplement.added": "Added to case {code}; the department is told. Send more, or 'done'.",
    "follow.supplement.review": (
        "Added to case {code}, and a review is asked for; the office above answers in writing "
        "by {due}. Send more, or 'done'."
    ),
    "repeat.ask": 'On {day} you told us of something very like this ({code}): "{quote}"\nIs it the same matter?',
    "repeat.same": "The same matter: add this to it",
    "repeat.new": "A new matter: file it",
    "repeat.again": "Please reply 1 or 2, so we put this in the right place.",
    "repeat.added": "Done: added to your case {code}; the department sees it with the rest, and no new case is filed. Send 'status' to follow it.",
    "repeat.gone": "Case {code} was just finished and takes no more; we file this as a new matter.",
    "follow.supplement.done": "All right, that is added.",
    "follow.supplement.too_late": "The time to ask for a review of case {code} has passed. Report anything new with '1'.",
    "follow.supplement.not_possible": "Nothing can be added to case {code} now. Reply 'staff' for help.",
    "follow.urged": "Case {code} is urged (time {n}); the department has been reminded.",
    "follow.too_soon": "This case was urged recently; you can urge it again after {day} {time}.",
    "follow.supplement.ask.sms": "Text what to add to case {code}, then 'done'. Photos can be added on {online}.",
    "sms.menu": "This is {office}. Text a case code (e.g. XF20260101-ABC123) to see its progress, add to it, urge or rate it. New matters: {online}, or call {hotline}.",
    "sms.file_elsewhere": "A new matter cannot be filed by SMS. Please use {online}, or call {hotline}; we will handle it with care. Text a case code to follow one already filed.",
    "sms.no_staff": "SMS cannot reach a person. Please call {hotline} ({hours}), or ask for a person on {online}.",
    "sms.capped": "You have sent us many texts; to keep costs down we will not answer by SMS until {until}. Follow your case on {online}, or call {hotline}.",
    "sms.cut": "… (too long for SMS: read it all on {online})",
    "history.supplemented": "you added information",
    "history.urged": "you urged it",
    "staff.alert.supplemented": "A citizen added information",
    "staff.alert.urged": "A citizen urges a case",
    "kind.petition": "Matter",
    "kind.suggestion": "Suggestion",
    "rate.none": (
        "You have no matter waiting for a rating. We will ask when a matter is closed. "
        "Reply 'menu' for other services."
    ),
    "rate.which": "Choose the matter to rate:",
    "rate.ask": "How satisfied are you with how case {code} was handled? Reply with a number:",
    "rate.comment": "Thank you! Anything else to tell us? Write it, or reply 'skip'.",
    "rate.unhappy_reason": (
        "We are sorry. Please tell us what went wrong; it goes to the person in charge "
        "(reply 'skip' to leave it out)."
    ),
    "rate.thanks": "Thank you for your rating!",
    "rate.done": "Your rating is recorded. Thank you.",
    "rate.already": "This matter has been rated already. Thank you. Reply 'menu' for other services.",
    "rate.invite": "Your matter {code} is closed. How satisfied are you with how it was handled? Reply with a number:",
    "rate.review_offer": "You may ask for a review by the office above until {until}. Ask for a review?",
    "rate.review_yes": "Ask for a review",
    "rate.review_no": "No, thank you",
    "rate.review_requested": "Your review request is registered; the office above answers in writing by {due}.",
    "rate.review_too_late": "The time to ask for a review has passed ({until}). Reply 'staff' with questions.",
    "scale3.1": "Satisfied",
    "scale3.2": "Fairly satisfied",
    "scale3.3": "Not satisfied",
    "scale5.1": "Very satisfied",
    "scale5.2": "Satisfied",
    "scale5.3": "Fairly satisfied",
    "scale5.4": "Not satisfied",
    "scale5.5": "Very dissatisfied",
    "survey.sms.full": (
        "Your matter {ref} is closed. How satisfied are you? Reply {options}; you may add a "
        "comment. Reply TD to opt out"
    ),
    "survey.sms.medium": "Matter {ref} is closed. Reply {options}; comments welcome. Reply TD to opt out",
    "survey.sms.short": "Rate matter {ref}: {options}. Reply TD to opt out",
    "survey.sms.option": "{n} {label}",
    "survey.sms.separator": ", ",
    "survey.sms.clarify": "Sorry, we did not understand. Rate matter {ref}: reply {options}. Reply TD to opt out",
    "survey.sms.which": "You have matters to rate (refs {refs}); add the ref after your rating, e.g. '1 {first}'",
    "survey.sms.unhappy": "We are sorry. Reply with the reason to reach the person in charge; reply REVIEW to ask for a review",
    "survey.sms.review_requested": "Your review request is registered; written answer by {due}",
    "survey.sms.review_too_late": "The time to ask for a review has passed ({until})",
    "faq.head": "Common questions, reply with a number:",
    "faq.none": "No matching question found. Try other words, or reply 'staff'.",
    "faq.more": "Reply with another number for another question, or 'menu' to go back.",
    "faq.empty": "No common questions yet. Reply 'staff' for help.",
    "faq.solved": "Did this answer your question?",
    "faq.solved.yes": "Yes",
    "faq.solved.no": "No, I want to report a matter",
    "faq.glad": "Good! Write to us any time you need.",
    "handoff.in_hours": "You are being put through to staff; they will reply here as soon as they can.",
    "handoff.off_hours": (
        "Your request for staff is recorded. Staff work {hours}; they will contact you as soon as "
        "they are back."
    ),
    "handoff.wait": "Meanwhile you can reply 'menu' for other services.",
    "staff.joined": "{name} from our staff is with you now; write here and they will answer.",
    "staff.says": "{name} (staff): {text}",
    "staff.left": "Our staff member has ended the conversation. Reply 'staff' for help again, or 'menu'.",
    "staff.left.sms": "Our staff member has ended the conversation. For more help call {hotline}; text a case code to see its progress.",
    "risk.emergency": (
        "If you or anyone is in danger, call 110 (police) or 120 (ambulance) now. "
        "Your matter has been passed to staff first."
    ),
    "notify.receipt": (
        "Your matter is registered under code {code}; please keep it. By law we will tell you "
        "by {due} whether it is accepted, and text you of progress."
    ),
    "notify.receipt.suggestion": "Your suggestion is registered under code {code}. We will study it and tell you the outcome.",
    "notify.accepted": "Your matter {code} is accepted and will be finished by {due}. We will tell you of progress.",
    "notify.redirected": (
        "Your matter {code} cannot be accepted: {reason}. Please take it to {where}. Reply 'staff' with questions."
    ),
    "notify.replied": "Your matter {code} has an answer:\n{note}\nIf not satisfied, you may ask for a review by {review}.",
    "notify.closed": "Your matter {code} is closed. Thank you for your patience.",
    "notify.extended": "Your matter {code} is complex; by law its deadline is extended to {due}. Reason: {reason}",
    "template.status.accepted": "Accepted",
    "template.status.redirected": "Not accepted",
    "template.status.replied": "Answered",
    "template.status.closed": "Closed",
    "template.status.extended": "Extended",
    "template.finish_by": "To be finished by {due}",
    "unsupported": (
        "Sorry, we cannot read this kind of message. Please send text, a photo or a location; "
        "reply 'menu' to see what we can do."
    ),
    "error.internal": "The system is busy; please send that again in a moment. Nothing you entered is lost.",
    "rate_limited": "You are sending too fast; please wait a minute and send again. Nothing you entered is lost.",
    "invalid_text": "This message has characters that cannot be read; please type it again and send it.",
    "seen_again": (
        "We already received and handled this message; it will not be handled twice. "
        "Please reply as the last message asked, or reply 'menu' to see what we can do."
    ),
    # -- for staff: alerts, the duty group, relayed words --------------------------------------
    "staff.alert.handoff": "A citizen asks for a person",
    "staff.alert.risk": "High-risk matter: act now",
    "staff.alert.unhappy": "A citizen is not satisfied with the outcome",
    "staff.alert.review": "A citizen asks for a review",
    "staff.alert.deadline.warning": "Deadline near",
    "staff.alert.deadline.missed": "Deadline missed",
    "staff.alert.notification.failed": "The citizen could not be told",
    "staff.alert.case": "Case: {code}{category}",
    "staff.alert.summary": "Summary: {summary}",
    "staff.alert.phone": " (phone {phone})",
    "staff.alert.channel": "Channel: {channel}",
    "staff.alert.deadline": "Deadline: {deadline}, {due}",
    "staff.alert.risk_words": "Risk words: {words}",
    "staff.alert.rating": "Rating: {label}",
    "staff.alert.rating_comment": "; reason: {comment}",
    "staff.alert.undelivered": "Not delivered: {topic} ({error})",
    "staff.group.no_thread": "No citizen found for this. Reply to an alert or to a citizen's message.",
    "staff.group.ended": "This conversation has ended.",
    "staff.group.claimed_by": "Taken by {name}.",
    "staff.telegram.claimed": "✅ {name} took it. Reply to this message to talk with the citizen; send /done when finished.",
    "staff.telegram.done": "The conversation with the citizen has ended; the system answers them again.",
    "staff.wecom.claimed": "✅ You have {code}. Everything you write now goes to the citizen; send 结束 when finished.",
    "staff.desk.claimed": "Taken. What you send goes to the citizen; press End when finished.",
    "staff.desk.done": "The conversation has ended; the system answers the citizen again.",
    "staff.wecom.done": "The conversation on {code} has ended; the system answers the citizen again.",
    "staff.claimed_again": "Your messages now go to the citizen of {code}.",
    "staff.no_account": "You ({user}) have no Minyi account, so nothing was passed on. Ask an administrator to run minyi staff add --wecom {user}.",
    "staff.text_only": "Only text can be passed on here; please type what you want to say.",
    "staff.no_case": "No case {code}; please check the code.",
    "staff.nothing_claimed": "You have no conversation claimed, or several. Send 认领 and a case code (e.g. 认领 XF20261122-7K3M9Q); then your messages go to that citizen.",
    "staff.group.citizen_says": "💬 Citizen: {text}",
    "staff.show.unfiled": "(no case yet) Citizen on: {channel}",
    "staff.show.case": "Case {code} ({category}) status: {status}",
    "staff.show.citizen": "Citizen: {name} {phone}",
    "staff.show.place": "Place: {place}",
    "staff.show.what": "What happened: {text}",
    "staff.show.history": "History:",
    "relay.image": "[photo]",
    "relay.voice": "[voice]",
    "relay.location": "[location] {place}",
    "relay.other": "[message]",
}

# The staff desk's sentences, kept in their own module and looked up like every other text.
ZH.update(DESK_ZH)
EN.update(DESK_EN)
# The office's case work (routing, 督办, 批示, mailboxes, suggestions' outcomes).
ZH.update(CASEWORK_ZH)
EN.update(CASEWORK_EN)


class Catalog:
    """Looks up texts by key and language; an office's overrides win over the built-in texts."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._texts: dict[str, dict[str, str]] = {"zh": dict(ZH), "en": dict(EN)}
        for lang, entries in (overrides or {}).items():
            if lang not in self._texts:
                raise ValueError(
                    f"texts.{lang}: unknown language (use one of {', '.join(LANGUAGES)})"
                )
            unknown = set(entries) - set(ZH)
            if unknown:
                raise ValueError(f"texts.{lang}: unknown text keys {sorted(unknown)}")
            self._texts[lang].update(entries)

    def text(self, lang: str, key: str, /, **values: Any) -> str:
        table = self._texts.get(lang) or self._texts["zh"]
        template = table.get(key) or self._texts["zh"][key]
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in self._texts["zh"]

    def for_language(self, lang: str) -> Texts:
        return Texts(self, lang if lang in self._texts else "zh")


class Texts:
    """The catalog bound to one conversation's language: `t("ask.name")`."""

    __slots__ = ("catalog", "lang")

    def __init__(self, catalog: Catalog, lang: str) -> None:
        self.catalog = catalog
        self.lang = lang

    def __call__(self, key: str, /, **values: Any) -> str:
        return self.catalog.text(self.lang, key, **values)
