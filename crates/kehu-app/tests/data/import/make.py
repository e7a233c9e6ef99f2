#!/usr/bin/env python3
"""Regenerates the text test files of this folder (see README.md). The XLSX file is made by
LibreOffice from contacts_for_xlsx.csv, not by this script."""
import csv, io

ZH_HEADERS = ["姓名", "邮箱", "手机", "公司", "职位", "城市", "生命周期阶段", "标签"]
ZH_ROWS = [
    ["张伟", "zhang.wei@example.cn", "13800138001", "北京星辰科技有限公司", "销售总监", "北京", "意向客户", "重点客户、华北"],
    ["王芳", "wang.fang@example.cn", "13800138002", "上海云帆贸易有限公司", "采购经理", "上海", "成交客户", "VIP"],
    ["李娜", "li.na@example.cn", "13800138003", "北京星辰科技有限公司", "市场专员", "北京", "线索", ""],
    ["刘洋", "liu.yang@example.cn", "13800138004", "深圳海纳电子有限公司", "总经理", "深圳", "线索", "展会,2024"],
]
EN_HEADERS = ["Name", "Email", "Mobile", "Company", "Job title", "City", "Lifecycle stage", "Tags", "Notes"]
EN_ROWS = [
    ["陈静", "chen.jing@example.com", "+86 139 0013 9001", "Acme 中国", "CTO", "杭州", "Customer", "vip;tech", "首次拜访：2024-03-01"],
    ["Alice Smith", "alice@example.com", "13900139002", "Acme 中国", "Buyer", "Hangzhou", "prospect", "", "met at \"Canton Fair\", follow up"],
    ["赵磊", "zhao.lei@example.com", "13900139003", "", "工程师", "成都", "", "", "第一行\n第二行"],
]

def csv_text(headers, rows, delimiter=","):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()

# Chinese Excel / WPS "CSV (逗号分隔)": GBK (code page 936), CRLF, no BOM.
open("contacts_gbk.csv", "wb").write(csv_text(ZH_HEADERS, ZH_ROWS).encode("gbk"))
# Excel "CSV UTF-8 (逗号分隔)": UTF-8 with BOM.
open("contacts_utf8_bom.csv", "wb").write(b"\xef\xbb\xbf" + csv_text(EN_HEADERS, EN_ROWS).encode("utf-8"))
# Excel "Unicode 文本": UTF-16 LE with BOM, tab separated, CRLF.
open("contacts_utf16le.txt", "wb").write(b"\xff\xfe" + csv_text(ZH_HEADERS, ZH_ROWS, "\t").encode("utf-16-le"))
# Semicolon separated UTF-8 without BOM (as European Excel writes it).
open("contacts_semicolon.csv", "wb").write(csv_text(EN_HEADERS, EN_ROWS, ";").encode("utf-8"))
# Source of contacts.xlsx (converted by LibreOffice).
open("contacts_for_xlsx.csv", "wb").write(csv_text(
    ["姓名", "邮箱", "手机", "公司", "生日", "评分"],
    [["孙悦", "sun.yue@example.cn", "13700137001", "杭州青禾网络", "1990-05-17", "88"],
     ["周杰", "zhou.jie@example.cn", "13700137002", "杭州青禾网络", "1985-12-01", "92"],
     ["吴敏", "wu.min@example.cn", "13700137003", "南京远山物流", "", "75"]]).encode("utf-8"))
# Bad rows: a wrong e-mail (row 3), an unknown select option (row 4), a duplicate key
# (row 5 repeats row 2's e-mail), then one good row (row 6).
open("bad_rows.csv", "wb").write(b"\xef\xbb\xbf" + csv_text(ZH_HEADERS, [
    ["郑好", "zheng.hao@example.cn", "13600136001", "", "", "广州", "线索", ""],
    ["钱多", "qian.duo@@example", "13600136002", "", "", "广州", "线索", ""],
    ["孙少", "sun.shao@example.cn", "13600136003", "", "", "广州", "大客户", ""],
    ["郑好二", "zheng.hao@example.cn", "13600136004", "", "", "广州", "线索", ""],
    ["冯好", "feng.hao@example.cn", "13600136005", "", "", "广州", "线索", ""],
]).encode("utf-8"))
