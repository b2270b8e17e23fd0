/**
 * Text for the OCR samples. The recogniser and classifier strings are a fixed list, curated so that the
 * ORIGINAL PP-OCRv4 models read them right on the rendered crops (a string the original misread was
 * dropped: a fidelity check compares a pruned model against the original, so the references must be
 * what the original does well). Chinese strings use only characters in the committed Noto Sans SC slices.
 */
import type { Rng } from '../../lib/rng';

/** Strings for the recogniser: English words, digits, mixed Latin and digits, Chinese, Chinese with digits. */
export const REC_TEXTS: readonly string[] = [
  'Invoice',
  'TOTAL',
  'Welcome home',
  'Customer Service',
  'Hello World',
  'Open 24 hours',
  'Quality',
  'Delivery Address',
  'Thank you',
  'Payment received',
  '2024-06-15',
  '13800138000',
  '$128.50',
  '09:45',
  '3.1415926',
  'No.52817',
  'Tel 021-6688',
  'Gate 12A',
  'ID A7X-9921',
  'Size XL 42',
  'Batch 7 of 12',
  'ver 2.3.1',
  '100% cotton',
  '上海市',
  '电话号码',
  '用户登录',
  '产品价格',
  '有限公司',
  '新年快乐',
  '开发者',
  '总价128元',
  '第3页',
  '2024年6月',
  '中国',
  '手机号码',
  '生产日期',
  '客户服务',
  '北京大学',
];

/** Lines for the direction classifier: long enough to have an obvious up and down, as detector crops are. */
export const CLS_TEXTS: readonly string[] = [
  'Customer Service Center',
  'Delivery Address',
  'Payment received today',
  'Invoice No. 52817',
  'Welcome to our shop',
  'Total amount due',
  'Open from 9 to 5',
  'Batch 7 of 12 shipped',
  'Quality control passed',
  'Thank you for shopping',
  '电话号码 021-6688',
  '上海市有限公司',
  '用户登录',
  '产品价格 128元',
  '新年快乐',
  '北京大学开发者',
  '生产日期 2024年6月',
  '客户服务中心',
  '手机号码 13800138000',
  '第3页 总价',
];

const WORDS = [
  'invoice', 'total', 'amount', 'customer', 'service', 'delivery', 'address', 'payment', 'order', 'number',
  'date', 'price', 'quantity', 'product', 'description', 'account', 'balance', 'receipt', 'store', 'thank',
  'you', 'for', 'your', 'the', 'and', 'with', 'from', 'this', 'page', 'report', 'summary', 'item', 'tax',
  'discount', 'shipping', 'phone', 'email', 'street', 'city', 'station', 'meeting', 'project', 'schedule',
  'notice', 'please', 'return', 'within', 'days', 'open', 'daily', 'hours', 'welcome', 'quality', 'fresh',
  'coffee', 'market', 'ticket', 'gate', 'platform', 'warning', 'exit', 'floor', 'room', 'library', 'science',
];

const CHINESE = [
  '上海市', '北京', '电话号码', '用户登录', '产品价格', '有限公司', '新年快乐', '开发者', '中国', '手机号码',
  '生产日期', '客户服务', '北京大学', '数学', '公司名', '工作时间', '欢乐时光', '服务中心', '地图', '价格表',
  '会员', '文件', '通知', '安全', '信息', '技术', '管理', '市场', '发展', '经理', '时间', '主要',
];

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)]!;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A random token: a word most of the time, else a number in some everyday format. */
export function token(rng: Rng): string {
  const r = rng.next();
  if (r < 0.62) {
    const w = pick(rng, WORDS);
    const c = rng.next();
    return c < 0.25 ? w[0]!.toUpperCase() + w.slice(1) : c < 0.33 ? w.toUpperCase() : w;
  }
  if (r < 0.7) return `${2000 + rng.int(30)}-${pad(1 + rng.int(12), 2)}-${pad(1 + rng.int(28), 2)}`;
  if (r < 0.78) return `$${1 + rng.int(999)}.${pad(rng.int(100), 2)}`;
  if (r < 0.84) return `${pad(rng.int(24), 2)}:${pad(rng.int(60), 2)}`;
  if (r < 0.9) return `No.${10000 + rng.int(90000)}`;
  if (r < 0.95) return `${rng.int(100)}%`;
  return `${100 + rng.int(900)}-${1000 + rng.int(9000)}`;
}

/** A Chinese phrase, sometimes with a number after it. */
export function chinesePhrase(rng: Rng): string {
  const p = pick(rng, CHINESE);
  const r = rng.next();
  if (r < 0.2) return `${p}${1 + rng.int(99)}`;
  if (r < 0.35) return `${p} ${pick(rng, CHINESE)}`;
  return p;
}
